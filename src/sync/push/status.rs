//! Per-ref push results, and the two text forms they travel in: `git push --porcelain` lines (own mode) and
//! the remote-helper status lines `ok <dst>` / `error <dst> <why>` (relay mode in, both modes out).
//!
//! Invariant: the helper-protocol keywords are git's exact texts (`non-fast forward`, `fetch first`,
//! `stale info`, `already exists`, `needs force`, `remote ref updated since checkout`, `forced update`,
//! `up to date`), so git prints the same rejection and the same hints as for a direct push. Anything else
//! becomes `error <dst> <why>`, which git shows as `[remote rejected] (<why>)`; a `<why>` that needs it is
//! C-quoted.

use std::fmt::Write as _;

/// Why a ref was not updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    NonFastForward,
    FetchFirst,
    StaleInfo,
    AlreadyExists,
    NeedsForce,
    RemoteUpdated,
    /// `[remote rejected] (<why>)`: the server (a hook, a policy) refused the update.
    Remote(String),
    /// Any other failure, e.g. the push could not run at all.
    Failed(String),
}

/// The outcome of one ref in a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefStatus {
    Ok,
    Forced,
    UpToDate,
    Rejected(Rejection),
}

impl RefStatus {
    /// True if the remote now holds what was pushed.
    pub fn landed(&self) -> bool {
        matches!(
            self,
            RefStatus::Ok | RefStatus::Forced | RefStatus::UpToDate
        )
    }

    /// True for a rejection by the server (hook or policy) rather than a client-side check.
    pub fn is_remote_rejection(&self) -> bool {
        matches!(self, RefStatus::Rejected(Rejection::Remote(_)))
    }

    /// A short reason for logs and summaries.
    pub fn reason(&self) -> String {
        match self {
            RefStatus::Ok => "ok".into(),
            RefStatus::Forced => "forced update".into(),
            RefStatus::UpToDate => "up to date".into(),
            RefStatus::Rejected(r) => match r {
                Rejection::NonFastForward => "non-fast-forward".into(),
                Rejection::FetchFirst => "fetch first".into(),
                Rejection::StaleInfo => "stale info".into(),
                Rejection::AlreadyExists => "already exists".into(),
                Rejection::NeedsForce => "needs force".into(),
                Rejection::RemoteUpdated => "remote ref updated since checkout".into(),
                Rejection::Remote(why) | Rejection::Failed(why) => why.clone(),
            },
        }
    }

    /// The remote-helper status line for `dst` (without the newline).
    pub fn helper_line(&self, dst: &str) -> String {
        let keyword = match self {
            RefStatus::Ok => return format!("ok {dst}"),
            RefStatus::Forced => return format!("ok {dst} forced update"),
            RefStatus::UpToDate => return format!("ok {dst} up to date"),
            RefStatus::Rejected(Rejection::NonFastForward) => "non-fast forward".to_string(),
            RefStatus::Rejected(Rejection::Remote(why) | Rejection::Failed(why)) => {
                let why = if why.is_empty() {
                    "rejected"
                } else {
                    why.as_str()
                };
                quote_if_needed(why)
            }
            other => other.reason(),
        };
        format!("error {dst} {keyword}")
    }

    /// Parse a remote-helper status line (`ok <dst> [msg]` / `error <dst> [why]`).
    pub fn parse_helper_line(line: &str) -> Option<(String, RefStatus)> {
        let (ok, rest) = if let Some(r) = line.strip_prefix("ok ") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("error ") {
            (false, r)
        } else {
            return None;
        };
        let (dst, msg) = match rest.split_once(' ') {
            Some((d, m)) => (d, Some(unquote(m))),
            None => (rest, None),
        };
        if dst.is_empty() {
            return None;
        }
        let status = match (ok, msg.as_deref()) {
            (_, Some("up to date")) => RefStatus::UpToDate,
            (true, Some("forced update")) => RefStatus::Forced,
            (true, _) => RefStatus::Ok,
            (false, Some(m)) => RefStatus::Rejected(rejection_from_keyword(m)),
            (false, None) => RefStatus::Rejected(Rejection::Remote("rejected".into())),
        };
        Some((dst.to_string(), status))
    }
}

/// Parse `git send-pack --helper-status` output: `ok <ref> [msg]` / `error <ref> [why]` lines, each `ok`
/// possibly followed by report-status-v2 `option …` lines (`option forced-update` makes it [`RefStatus::Forced`]).
/// Other lines are ignored.
pub fn parse_helper_status(text: &str) -> std::collections::BTreeMap<String, RefStatus> {
    let mut out = std::collections::BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        // One per advertised ref the push did not touch (100,000 on a big remote): skip without parsing.
        if line.ends_with(" no match") && line.starts_with("error ") {
            continue;
        }
        if line == "option forced-update" {
            if let Some(s) = last.as_ref().and_then(|name| out.get_mut(name)) {
                if *s == RefStatus::Ok {
                    *s = RefStatus::Forced;
                }
            }
            continue;
        }
        if let Some((name, status)) = RefStatus::parse_helper_line(line) {
            last = Some(name.clone());
            out.insert(name, status);
        }
    }
    out
}

fn rejection_from_keyword(m: &str) -> Rejection {
    match m {
        // send-pack's word for "the server hung up before it reported": no verdict on the ref.
        "expecting report" => Rejection::Failed(m.to_string()),
        "non-fast forward" | "non-fast-forward" => Rejection::NonFastForward,
        "fetch first" => Rejection::FetchFirst,
        "stale info" => Rejection::StaleInfo,
        "already exists" => Rejection::AlreadyExists,
        "needs force" => Rejection::NeedsForce,
        "remote ref updated since checkout" => Rejection::RemoteUpdated,
        other => Rejection::Remote(other.to_string()),
    }
}

/// One line of `git push --porcelain` output: `<flag>\t<src>:<dst>\t<summary> (<reason>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PorcelainLine {
    pub src: String,
    pub dst: String,
    pub status: RefStatus,
}

/// Parse one porcelain line; `None` for `To <url>`, `Done` and anything else that is not a ref line.
pub fn parse_porcelain_line(line: &str) -> Option<PorcelainLine> {
    let mut parts = line.splitn(3, '\t');
    let (flag, refs, summary) = (parts.next()?, parts.next()?, parts.next().unwrap_or(""));
    let (src, dst) = refs.split_once(':')?;
    let reason = summary
        .rsplit_once(" (")
        .and_then(|(_, r)| r.strip_suffix(')'))
        .unwrap_or("");
    let status = match flag {
        " " | "*" | "-" => RefStatus::Ok,
        "+" => RefStatus::Forced,
        "=" => RefStatus::UpToDate,
        "!" => {
            let rejection = if summary.starts_with("[remote rejected]") {
                Rejection::Remote(reason.to_string())
            } else if summary.starts_with("[rejected]") {
                match rejection_from_keyword(reason) {
                    Rejection::Remote(other) => Rejection::Failed(other),
                    known => known,
                }
            } else {
                Rejection::Failed(
                    summary
                        .trim_start_matches('[')
                        .replacen("] (", ": ", 1)
                        .trim_end_matches([')', ']'])
                        .to_string(),
                )
            };
            RefStatus::Rejected(rejection)
        }
        _ => return None,
    };
    Some(PorcelainLine {
        src: src.to_string(),
        dst: dst.to_string(),
        status,
    })
}

/// C-quote `s` the way git's `quote_c_style` does, but only if it needs quoting.
pub fn quote_if_needed(s: &str) -> String {
    let needs = s.starts_with('"') || s.bytes().any(|b| b < 0x20 || b == 0x7f || b == b'\\');
    if !needs {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\{:03o}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Undo [`quote_if_needed`] (and git's `quote_c_style`); text that is not quoted is returned as is.
pub fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return s.to_string();
    };
    let mut out = Vec::new();
    let bytes = inner.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let c = bytes[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'0'..=b'3'
                if i + 1 < bytes.len()
                    && (b'0'..=b'7').contains(&bytes[i])
                    && (b'0'..=b'7').contains(&bytes[i + 1]) =>
            {
                out.push((c - b'0') * 64 + (bytes[i] - b'0') * 8 + (bytes[i + 1] - b'0'));
                i += 2;
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_lines_round_trip() {
        let cases = [
            (RefStatus::Ok, "ok refs/heads/main"),
            (RefStatus::Forced, "ok refs/heads/main forced update"),
            (RefStatus::UpToDate, "ok refs/heads/main up to date"),
            (
                RefStatus::Rejected(Rejection::NonFastForward),
                "error refs/heads/main non-fast forward",
            ),
            (
                RefStatus::Rejected(Rejection::FetchFirst),
                "error refs/heads/main fetch first",
            ),
            (
                RefStatus::Rejected(Rejection::StaleInfo),
                "error refs/heads/main stale info",
            ),
            (
                RefStatus::Rejected(Rejection::AlreadyExists),
                "error refs/heads/main already exists",
            ),
            (
                RefStatus::Rejected(Rejection::NeedsForce),
                "error refs/heads/main needs force",
            ),
            (
                RefStatus::Rejected(Rejection::RemoteUpdated),
                "error refs/heads/main remote ref updated since checkout",
            ),
            (
                RefStatus::Rejected(Rejection::Remote("pre-receive hook declined".into())),
                "error refs/heads/main pre-receive hook declined",
            ),
            (
                RefStatus::Rejected(Rejection::Remote("two\nlines".into())),
                "error refs/heads/main \"two\\nlines\"",
            ),
        ];
        for (status, line) in cases {
            assert_eq!(status.helper_line("refs/heads/main"), line);
            assert_eq!(
                RefStatus::parse_helper_line(line),
                Some(("refs/heads/main".to_string(), status.clone())),
                "{line}"
            );
        }
        assert_eq!(RefStatus::parse_helper_line("okay"), None);
        assert_eq!(RefStatus::parse_helper_line(""), None);
    }

    #[test]
    fn helper_status_table() {
        let text = "ok refs/heads/main\noption old-oid 1111111111111111111111111111111111111111\n\
                    option forced-update\nok refs/heads/b up to date\nok refs/heads/c\n\
                    error refs/heads/d non-fast forward\nerror refs/entire/x no match\n\
                    error refs/heads/e \"hook\\nsaid no\"\nerror refs/heads/f expecting report\n";
        let got = parse_helper_status(text);
        let want = [
            ("refs/heads/main", RefStatus::Forced),
            ("refs/heads/b", RefStatus::UpToDate),
            ("refs/heads/c", RefStatus::Ok),
            (
                "refs/heads/d",
                RefStatus::Rejected(Rejection::NonFastForward),
            ),
            (
                "refs/heads/e",
                RefStatus::Rejected(Rejection::Remote("hook\nsaid no".into())),
            ),
            (
                "refs/heads/f",
                RefStatus::Rejected(Rejection::Failed("expecting report".into())),
            ),
        ];
        for (name, status) in want {
            assert_eq!(got.get(name), Some(&status), "{name}");
        }
        assert!(parse_helper_status("").is_empty());
    }

    #[test]
    fn porcelain_table() {
        let p = |flag: &str, summary: &str| {
            parse_porcelain_line(&format!("{flag}\trefs/heads/a:refs/heads/b\t{summary}"))
                .map(|l| l.status)
        };
        let rej = |r| Some(RefStatus::Rejected(r));
        assert_eq!(p("*", "[new branch]"), Some(RefStatus::Ok));
        assert_eq!(p(" ", "1234567..89abcde"), Some(RefStatus::Ok));
        assert_eq!(
            p("+", "1234567...89abcde (forced update)"),
            Some(RefStatus::Forced)
        );
        assert_eq!(p("-", "[deleted]"), Some(RefStatus::Ok));
        assert_eq!(p("=", "[up to date]"), Some(RefStatus::UpToDate));
        assert_eq!(
            p("!", "[rejected] (non-fast-forward)"),
            rej(Rejection::NonFastForward)
        );
        assert_eq!(
            p("!", "[rejected] (fetch first)"),
            rej(Rejection::FetchFirst)
        );
        assert_eq!(p("!", "[rejected] (stale info)"), rej(Rejection::StaleInfo));
        assert_eq!(
            p("!", "[rejected] (already exists)"),
            rej(Rejection::AlreadyExists)
        );
        assert_eq!(
            p("!", "[rejected] (needs force)"),
            rej(Rejection::NeedsForce)
        );
        assert_eq!(
            p("!", "[rejected] (remote ref updated since checkout)"),
            rej(Rejection::RemoteUpdated)
        );
        assert_eq!(
            p("!", "[remote rejected] (pre-receive hook declined)"),
            rej(Rejection::Remote("pre-receive hook declined".into()))
        );
        assert_eq!(
            p("!", "[rejected] (atomic push failed)"),
            rej(Rejection::Failed("atomic push failed".into()))
        );
        assert_eq!(
            p("!", "[remote failure] (remote failed to report status)"),
            rej(Rejection::Failed(
                "remote failure: remote failed to report status".into()
            ))
        );
        assert_eq!(parse_porcelain_line("To ../remote.git"), None);
        assert_eq!(parse_porcelain_line("Done"), None);
        let l = parse_porcelain_line(
            "*\trefs/entire/push-queue/R/c4/x:refs/entire/checkpoints/c4/x\t[new reference]",
        )
        .expect("parses");
        assert_eq!(l.src, "refs/entire/push-queue/R/c4/x");
        assert_eq!(l.dst, "refs/entire/checkpoints/c4/x");
        let del = parse_porcelain_line("-\t:refs/heads/gone\t[deleted]").expect("parses");
        assert_eq!(
            (del.src.as_str(), del.dst.as_str()),
            ("", "refs/heads/gone")
        );
    }

    #[test]
    fn quoting_table() {
        let cases = [
            ("plain words", "plain words"),
            ("a\nb", "\"a\\nb\""),
            ("back\\slash", "\"back\\\\slash\""),
            ("\"lead", "\"\\\"lead\""),
            ("bell\u{7}", "\"bell\\007\""),
        ];
        for (raw, quoted) in cases {
            assert_eq!(quote_if_needed(raw), quoted);
            assert_eq!(unquote(quoted), raw, "{quoted}");
        }
    }
}
