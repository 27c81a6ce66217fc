//! Redaction of secrets in well-known formats, applied to a transcript (and to
//! prompt text) before anything is stored in a checkpoint.
//!
//! Every secret found is replaced by the token [`REPLACEMENT`] (`REDACTED`, the
//! same token upstream's `redact` package writes). Detection is a fixed list of
//! patterns; there is no entropy heuristic (upstream has one, plus the gitleaks
//! rule set), so only the formats below are caught.
//!
//! # Rules
//!
//! "Secret" is the part that is replaced; the rest of the match is context and
//! stays. `\b` is an ASCII word boundary. All patterns are ASCII-only.
//!
//! | Rule | Pattern (abridged) | Secret |
//! |---|---|---|
//! | `private_key` | `-----BEGIN …PRIVATE KEY[ BLOCK]-----` … `-----END …PRIVATE KEY[ BLOCK]-----` (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP, plain) | whole block, armour lines included |
//! | `private_key_truncated` | the BEGIN line followed by base64 lines (`[A-Za-z0-9+/=]{16,}` separated by whitespace or a literal `\n`), no END | BEGIN line and those lines |
//! | `aws_access_key_id` | `\b(AKIA\|ASIA\|ABIA\|ACCA\|A3T[A-Z0-9])[A-Z2-7]{16}\b` | whole match |
//! | `aws_secret_access_key` | key name `aws_secret_access_key`, `aws_secret_key`, `secret_access_key`, `SecretAccessKey` (any case, `_` optional), optional quotes, `:` or `=`, then `[A-Za-z0-9/+=]{40}` not followed by another such char | the 40 characters |
//! | `github_token` | `\b(ghp\|gho\|ghu\|ghs\|ghr)_[A-Za-z0-9]{36,255}\b` | whole match |
//! | `github_pat` | `\bgithub_pat_[A-Za-z0-9_]{22,255}\b` | whole match |
//! | `gitlab_pat` | `\bglpat-[A-Za-z0-9_-]{20,255}` plus optional `.`-separated suffixes | whole match |
//! | `slack_token` | `\bxox[baprs]-[A-Za-z0-9-]{10,255}` | whole match |
//! | `stripe_key` | `\b(sk\|rk)_(live\|test)_[A-Za-z0-9]{10,255}\b` | whole match |
//! | `google_api_key` | `\bAIza[0-9A-Za-z_-]{35}` not followed by `[0-9A-Za-z_-]` | whole key |
//! | `anthropic_key` | `\bsk-ant-[A-Za-z0-9_-]{32,255}`, payload must mix digits, upper and lower case | whole match |
//! | `openai_key` | `\bsk-(proj-\|svcacct-\|admin-)?[A-Za-z0-9_-]{32,255}`, same mix check | whole match |
//! | `npm_token` | `\bnpm_[A-Za-z0-9]{36}\b` | whole match |
//! | `jwt` | `\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*` | whole match |
//! | `bearer` | `authorization` (any case), optional quotes, `:` or `=`, `Bearer` (any case), blanks, then `[A-Za-z0-9._~+/-]{8,}=*` | the token |
//!
//! The mix check keeps identifiers such as `sk-learn-compatible-estimator-…`
//! out. Overlapping matches are merged into one replacement. A match that is
//! already exactly `REDACTED` is left alone.
//!
//! # JSONL
//!
//! [`redact_jsonl`] works line by line (split on `\n`, every byte kept):
//!
//! - A line that is valid JSON is scanned token by token. Only string tokens
//!   (keys and values) are searched, on their decoded text. A secret's span is
//!   mapped back to the raw bytes, whole escape sequences included, and that
//!   raw span is replaced by `REDACTED`. The line is never re-serialized, so a
//!   line without secrets comes back byte for byte and a redacted line stays
//!   valid JSON with all other bytes untouched.
//! - A string value whose object key contains `secret` or `authorization`
//!   (any case) is also searched as `key=value`, so
//!   `{"aws_secret_access_key": "…"}` and `{"Authorization": "Bearer …"}`
//!   are caught although key and value are separate tokens.
//! - Not searched: the value of a `"signature"` key (thinking-block
//!   signatures, which must stay intact to be replayable) and every string in
//!   an object whose `"type"` starts with `image` or is `base64` (inline image
//!   and document data, where random base64 could look like a key). Upstream
//!   skips the same. Upstream also skips values of keys ending in `id`; here
//!   they are searched (none of these patterns fires on ids).
//! - Any other line (invalid JSON, blank, partial) is searched as plain text,
//!   like [`redact_text`].
//!
//! # Invariants
//!
//! - Input without a match comes back unchanged (`redact_text` borrows).
//! - Redaction is idempotent: `redact(redact(x)) == redact(x)`. A
//!   replacement can glue text into a new match (`Bearer <t>` followed by a
//!   key the first pass could not delimit), so each line is redacted again
//!   until nothing changes (at most 8 passes).
//! - Valid JSON lines stay valid JSON; valid UTF-8 stays valid UTF-8 (every
//!   replaced span starts and ends on an ASCII byte).
//! - Nothing here fails or panics; arbitrary bytes are accepted. Each pass is
//!   a few linear-time regex scans (the `regex` crate's guarantee).
//! - A line nested deeper than `serde_json`'s limit (128) counts as invalid
//!   JSON and is searched as text, which could cut across string boundaries.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

#[cfg(test)]
mod tests;

/// The token every secret is replaced with.
pub const REPLACEMENT: &str = "REDACTED";

/// One detection rule.
struct Rule {
    /// Name used in the documentation table and in tests.
    name: &'static str,
    /// Byte regex, compiled with Unicode off (ASCII classes and `\b`).
    pattern: &'static str,
    /// Capture group holding the secret; 0 is the whole match.
    group: usize,
    /// Extra check on the secret bytes; a match failing it is ignored.
    check: fn(&[u8]) -> bool,
}

/// The rule set. Order does not matter: overlapping spans are merged.
const RULES: &[Rule] = &[
    Rule {
        name: "private_key",
        pattern: r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----(?s:.*?)-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----",
        group: 0,
        check: always,
    },
    Rule {
        name: "private_key_truncated",
        pattern: r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:(?:\s|\\[rn])+[A-Za-z0-9+/=]{16,})*",
        group: 0,
        check: always,
    },
    Rule {
        name: "aws_access_key_id",
        pattern: r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}\b",
        group: 0,
        check: always,
    },
    Rule {
        name: "aws_secret_access_key",
        pattern: r#"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\\"']{0,3}[ \t]*[:=][ \t]*[\\"']{0,3}([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        group: 1,
        check: always,
    },
    Rule {
        name: "github_token",
        pattern: r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,255}\b",
        group: 0,
        check: always,
    },
    Rule {
        name: "github_pat",
        pattern: r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
        group: 0,
        check: always,
    },
    Rule {
        name: "gitlab_pat",
        pattern: r"\bglpat-[A-Za-z0-9_-]{20,255}(?:\.[A-Za-z0-9_-]+)*",
        group: 0,
        check: always,
    },
    Rule {
        name: "slack_token",
        pattern: r"\bxox[baprs]-[A-Za-z0-9-]{10,255}",
        group: 0,
        check: always,
    },
    Rule {
        name: "stripe_key",
        pattern: r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,255}\b",
        group: 0,
        check: always,
    },
    Rule {
        name: "google_api_key",
        pattern: r"\b(AIza[0-9A-Za-z_-]{35})(?:[^0-9A-Za-z_-]|$)",
        group: 1,
        check: always,
    },
    Rule {
        name: "anthropic_key",
        pattern: r"\bsk-ant-[A-Za-z0-9_-]{32,255}",
        group: 0,
        check: mixed_case_and_digit,
    },
    Rule {
        name: "openai_key",
        pattern: r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,255}",
        group: 0,
        check: mixed_case_and_digit,
    },
    Rule {
        name: "npm_token",
        pattern: r"\bnpm_[A-Za-z0-9]{36}\b",
        group: 0,
        check: always,
    },
    Rule {
        name: "jwt",
        pattern: r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        group: 0,
        check: always,
    },
    Rule {
        name: "bearer",
        pattern: r#"(?i:authorization)[\\"']{0,3}[ \t]*[:=][ \t]*[\\"']{0,3}(?i:bearer)[ \t]+([A-Za-z0-9._~+/-]{8,}=*)"#,
        group: 1,
        check: always,
    },
];

/// Key names whose string value is also searched as `key=value`.
const CONTEXT_KEYS: &str = r"(?i)secret|authorization";

fn always(_: &[u8]) -> bool {
    true
}

/// True when the bytes contain an ASCII digit, an upper- and a lower-case letter.
fn mixed_case_and_digit(s: &[u8]) -> bool {
    s.iter().any(u8::is_ascii_digit)
        && s.iter().any(u8::is_ascii_uppercase)
        && s.iter().any(u8::is_ascii_lowercase)
}

struct Compiled {
    set: RegexSet,
    rules: Vec<Regex>,
    context_key: Regex,
}

static COMPILED: LazyLock<Compiled> = LazyLock::new(|| {
    let patterns: Vec<&str> = RULES.iter().map(|r| r.pattern).collect();
    let set = RegexSetBuilder::new(&patterns)
        .unicode(false)
        .build()
        .expect("built-in redaction patterns compile");
    let rules = patterns.iter().map(|p| build(p)).collect();
    let context_key = build(CONTEXT_KEYS);
    Compiled {
        set,
        rules,
        context_key,
    }
});

fn build(pattern: &str) -> Regex {
    RegexBuilder::new(pattern)
        .unicode(false)
        .build()
        .expect("built-in redaction pattern compiles")
}

/// Names of the rules, in table order (for documentation and tests).
pub fn rule_names() -> impl Iterator<Item = &'static str> {
    RULES.iter().map(|r| r.name)
}

/// Upper bound on redaction passes (see [`to_fixpoint`]).
const MAX_PASSES: usize = 8;

/// Redacts secrets in free text. Returns the input borrowed when nothing matched.
pub fn redact_text(s: &str) -> Cow<'_, str> {
    let Some(out) = to_fixpoint(s.as_bytes(), text_pass) else {
        return Cow::Borrowed(s);
    };
    // Spans start and end on ASCII bytes, so the result is valid UTF-8.
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Redacts secrets in a JSONL document, line by line (see the module docs).
pub fn redact_jsonl(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok();
        let pass = if is_json { json_pass } else { text_pass };
        match to_fixpoint(line, pass) {
            Some(redacted) => out.extend_from_slice(&redacted),
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// Applies `pass` until it finds nothing more (at most [`MAX_PASSES`] times).
/// A replacement can expose a secret the first pass could not see (a token
/// glued to the end of another one), so one pass is not always idempotent.
/// Returns `None` when the first pass finds nothing.
fn to_fixpoint(input: &[u8], pass: fn(&[u8]) -> Option<Vec<u8>>) -> Option<Vec<u8>> {
    let mut current = pass(input)?;
    for _ in 1..MAX_PASSES {
        match pass(&current) {
            Some(next) => current = next,
            None => break,
        }
    }
    Some(current)
}

fn text_pass(hay: &[u8]) -> Option<Vec<u8>> {
    let regions = find_secrets(hay);
    (!regions.is_empty()).then(|| splice(hay, &regions))
}

fn json_pass(line: &[u8]) -> Option<Vec<u8>> {
    let regions = json::secrets_in_line(line);
    (!regions.is_empty()).then(|| splice(line, &regions))
}

/// Finds secret spans in `hay`: sorted, merged, non-empty, never exactly `REDACTED`.
fn find_secrets(hay: &[u8]) -> Vec<Range<usize>> {
    let compiled = &*COMPILED;
    let hits = compiled.set.matches(hay);
    if !hits.matched_any() {
        return Vec::new();
    }
    let mut regions = Vec::new();
    for idx in hits.iter() {
        collect_rule(&RULES[idx], &compiled.rules[idx], hay, &mut regions);
    }
    merge(regions)
}

/// Appends every span of one rule. The search resumes at the end of the secret
/// (not of the whole match), so a boundary byte consumed after one secret can
/// still begin the next.
fn collect_rule(rule: &Rule, re: &Regex, hay: &[u8], regions: &mut Vec<Range<usize>>) {
    let mut pos = 0;
    while pos <= hay.len() {
        let Some(caps) = re.captures_at(hay, pos) else {
            break;
        };
        let Some(m) = caps.get(rule.group) else {
            break;
        };
        let whole = caps.get(0).map_or(m.start(), |w| w.start());
        pos = m.end().max(whole + 1);
        let secret = &hay[m.range()];
        if !secret.is_empty() && secret != REPLACEMENT.as_bytes() && (rule.check)(secret) {
            regions.push(m.range());
        }
    }
}

/// Sorts spans and merges overlapping or touching ones.
fn merge(mut regions: Vec<Range<usize>>) -> Vec<Range<usize>> {
    regions.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(regions.len());
    for r in regions {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Copies `src`, replacing each (sorted, disjoint) span with [`REPLACEMENT`].
fn splice(src: &[u8], regions: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    let mut prev = 0;
    for r in regions {
        out.extend_from_slice(&src[prev..r.start]);
        out.extend_from_slice(REPLACEMENT.as_bytes());
        prev = r.end;
    }
    out.extend_from_slice(&src[prev..]);
    out
}

/// Token-level scan of one valid JSON line.
mod json {
    use super::{find_secrets, merge, COMPILED};
    use std::borrow::Cow;
    use std::ops::Range;

    /// One open container while scanning.
    #[derive(Default)]
    struct Frame {
        is_object: bool,
        expect_key: bool,
        /// Decoded text of the key whose value comes next.
        key: Option<Vec<u8>>,
        /// Set by `"type": "image…"` / `"base64"`: drop all spans found inside.
        skip: bool,
        /// Raw spans found inside this container so far.
        spans: Vec<Range<usize>>,
    }

    /// Returns the raw byte spans of secrets inside string tokens of `line`,
    /// which must be valid JSON. Spans are sorted and disjoint.
    pub(super) fn secrets_in_line(line: &[u8]) -> Vec<Range<usize>> {
        let mut stack = vec![Frame::default()];
        let mut i = 0;
        while i < line.len() {
            match line[i] {
                b'"' => {
                    let end = string_end(line, i + 1);
                    on_string(stack.last_mut(), line, i + 1..end);
                    i = end + 1;
                    continue;
                }
                b'{' => stack.push(Frame {
                    is_object: true,
                    expect_key: true,
                    ..Frame::default()
                }),
                b'[' => stack.push(Frame::default()),
                b'}' | b']' => close(&mut stack),
                b':' => {
                    if let Some(top) = stack.last_mut() {
                        top.expect_key = false;
                    }
                }
                b',' => {
                    if let Some(top) = stack.last_mut().filter(|f| f.is_object) {
                        top.expect_key = true;
                        top.key = None;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        while stack.len() > 1 {
            close(&mut stack);
        }
        let spans = stack.pop().map(|f| f.spans).unwrap_or_default();
        merge(spans)
    }

    /// Pops a container, handing its spans to the parent unless it is skipped.
    fn close(stack: &mut Vec<Frame>) {
        if stack.len() < 2 {
            return;
        }
        if let Some(frame) = stack.pop() {
            if let (false, Some(parent)) = (frame.skip, stack.last_mut()) {
                parent.spans.extend(frame.spans);
            }
        }
    }

    /// Index of the closing quote of a string whose content starts at `from`
    /// (or `line.len()` if unterminated, which valid JSON rules out).
    fn string_end(line: &[u8], from: usize) -> usize {
        let mut j = from;
        while j < line.len() {
            match line[j] {
                b'\\' => j += 2,
                b'"' => return j,
                _ => j += 1,
            }
        }
        line.len()
    }

    /// Handles one string token whose content (between the quotes) is `content`.
    fn on_string(frame: Option<&mut Frame>, line: &[u8], content: Range<usize>) {
        let Some(frame) = frame else { return };
        let raw = &line[content.clone()];
        let decoded = Decoded::new(raw);
        if frame.is_object && frame.expect_key {
            frame.spans.extend(decoded.secrets(None, content.start));
            frame.key = Some(decoded.text.into_owned());
            return;
        }
        let key = if frame.is_object {
            frame.key.take()
        } else {
            None
        };
        match key.as_deref() {
            Some(b"signature") => return,
            Some(b"type") if decoded.text.starts_with(b"image") || *decoded.text == *b"base64" => {
                frame.skip = true;
            }
            _ => {}
        }
        frame
            .spans
            .extend(decoded.secrets(key.as_deref(), content.start));
    }

    /// A JSON string's decoded bytes with a map back to raw offsets.
    struct Decoded<'a> {
        text: Cow<'a, [u8]>,
        /// `map[k]` = raw offset of decoded byte `k`; one extra entry for the end.
        /// Empty when the raw content has no escapes (identity map).
        map: Vec<usize>,
    }

    impl<'a> Decoded<'a> {
        fn new(raw: &'a [u8]) -> Self {
            if !raw.contains(&b'\\') {
                return Decoded {
                    text: Cow::Borrowed(raw),
                    map: Vec::new(),
                };
            }
            let (text, map) = unescape(raw);
            Decoded {
                text: Cow::Owned(text),
                map,
            }
        }

        fn raw_offset(&self, k: usize) -> usize {
            if self.map.is_empty() {
                k
            } else {
                self.map[k]
            }
        }

        /// Secret spans as absolute raw offsets (`base` = content start in the line).
        /// With a context-bearing key, the value is also searched as `key=value`.
        fn secrets(&self, key: Option<&[u8]>, base: usize) -> Vec<Range<usize>> {
            let mut found = find_secrets(&self.text);
            if let Some(key) = key.filter(|k| COMPILED.context_key.is_match(k)) {
                let mut hay = Vec::with_capacity(key.len() + 1 + self.text.len());
                hay.extend_from_slice(key);
                hay.push(b'=');
                hay.extend_from_slice(&self.text);
                let off = key.len() + 1;
                found.extend(
                    find_secrets(&hay)
                        .into_iter()
                        .filter(|r| r.end > off)
                        .map(|r| r.start.max(off) - off..r.end - off),
                );
                found = merge(found);
            }
            found
                .into_iter()
                .map(|r| base + self.raw_offset(r.start)..base + self.raw_offset(r.end))
                .filter(|r| !r.is_empty())
                .collect()
        }
    }

    /// Decodes JSON string escapes. Lone surrogates and malformed escapes never
    /// fail: they decode to U+FFFD or are copied through.
    fn unescape(raw: &[u8]) -> (Vec<u8>, Vec<usize>) {
        let mut text = Vec::with_capacity(raw.len());
        let mut map = Vec::with_capacity(raw.len() + 1);
        let mut k = 0;
        while k < raw.len() {
            let start = k;
            let mut buf = [0u8; 4];
            let (bytes, used): (&[u8], usize) = match (raw[k], raw.get(k + 1)) {
                (b'\\', Some(&b'u')) => match unicode_escape(raw, k) {
                    Some((ch, used)) => (ch.encode_utf8(&mut buf).as_bytes(), used),
                    None => (&raw[k..k + 1], 1),
                },
                (b'\\', Some(&c)) => {
                    buf[0] = simple_escape(c);
                    (&buf[..1], 2)
                }
                _ => (&raw[k..k + 1], 1),
            };
            text.extend_from_slice(bytes);
            map.extend(std::iter::repeat_n(start, bytes.len()));
            k += used;
        }
        map.push(raw.len());
        (text, map)
    }

    fn simple_escape(c: u8) -> u8 {
        match c {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'b' => 0x08,
            b'f' => 0x0c,
            other => other, // `"`, `\`, `/`
        }
    }

    /// Decodes `\uXXXX` (joined with a following low surrogate) at `k`;
    /// returns the char and the raw bytes used, or `None` if malformed.
    fn unicode_escape(raw: &[u8], k: usize) -> Option<(char, usize)> {
        let hi = hex4(raw, k + 2)?;
        if (0xD800..0xDC00).contains(&hi) && raw.get(k + 6..k + 8) == Some(&b"\\u"[..]) {
            if let Some(lo) = hex4(raw, k + 8).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Some((char::from_u32(cp).unwrap_or('\u{FFFD}'), 12));
            }
        }
        Some((char::from_u32(hi).unwrap_or('\u{FFFD}'), 6))
    }

    fn hex4(raw: &[u8], at: usize) -> Option<u32> {
        raw.get(at..at + 4)?.iter().try_fold(0u32, |acc, &b| {
            let digit = char::from(b).to_digit(16)?;
            Some(acc * 16 + digit)
        })
    }
}
