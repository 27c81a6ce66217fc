//! Links from code commits to checkpoints: `Entire-Checkpoint: <id>` trailers.
//!
//! Invariants:
//! - A commit may name several checkpoints (squash merges concatenate trailers), in any paragraph; every line
//!   `Entire-Checkpoint: <id>` (key case-insensitive) counts, in order, without duplicates.
//! - Values that are not valid checkpoint IDs are skipped, never fatal; IDs that name no checkpoint anywhere
//!   ("dangling") are the caller's business.
//! - The walk is git's (`git log`), newest first, so rev-range syntax is exactly git's; only commits whose
//!   message mentions the trailer are read, and the walk stops as soon as enough IDs were seen.
//!
//! Failure modes: [`LinkError`] for a bad revision (git's message) or a git that could not run.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::Stdio;

use crate::git::cmd::{self as gitcmd, GitCmdError};
use crate::model::id::CheckpointId;

/// The trailer key.
pub const TRAILER: &str = "Entire-Checkpoint";

/// Errors while scanning history.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(transparent)]
    Git(#[from] GitCmdError),
    #[error("{0}")]
    BadRevision(String),
}

/// One code commit and the checkpoints it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Full hex commit ID.
    pub commit: String,
    /// First line of the message.
    pub subject: String,
    pub ids: Vec<CheckpointId>,
}

/// Checkpoint IDs named by `message`'s trailers, in order, without duplicates.
pub fn parse_trailers(message: &str) -> Vec<CheckpointId> {
    let mut out: Vec<CheckpointId> = Vec::new();
    for line in message.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        if !key.trim().eq_ignore_ascii_case(TRAILER) || key.starts_with(char::is_whitespace) {
            continue;
        }
        if let Ok(id) = CheckpointId::parse(value.trim()) {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

/// Which commits to scan.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    /// Revision options for `git log` (`--not`, `--exclude=…`, `--all`), applied after the `--stdin` revisions.
    pub options: Vec<String>,
    /// Revisions and ranges from the user (after `--end-of-options`, so nothing in them is an option).
    pub revs: Vec<String>,
    /// Revisions fed through `--stdin` (`<oid>` or `^<oid>`), for long lists.
    pub stdin: Vec<String>,
    /// Stop once this many distinct IDs were seen.
    pub max_ids: Option<usize>,
}

/// Scan the commits selected by `walk` in the repository at `dir`, newest first.
pub fn scan(dir: &Path, walk: &Walk) -> Result<Vec<Link>, LinkError> {
    let mut cmd = gitcmd::git();
    cmd.arg("-C")
        .arg(dir)
        .args(["log", "--no-color", "--regexp-ignore-case"])
        .arg(format!("--grep=^{TRAILER}:"))
        .arg("--format=%x1e%H%x1f%B");
    if !walk.stdin.is_empty() {
        cmd.arg("--stdin").stdin(Stdio::piped());
    }
    cmd.args(&walk.options);
    if !walk.revs.is_empty() {
        cmd.arg("--end-of-options").args(&walk.revs);
    }
    cmd.arg("--");
    let mut child = gitcmd::spawn(&mut cmd)?;
    if let Some(mut input) = child.stdin.take() {
        let revs = walk.stdin.join("\n") + "\n";
        std::thread::spawn(move || {
            let _ = input.write_all(revs.as_bytes());
        });
    }
    let stderr = child.stderr.take();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    });
    let mut links = Vec::new();
    let mut seen = HashSet::new();
    let mut stopped_early = false;
    if let Some(out) = child.stdout.take() {
        let mut reader = BufReader::new(out);
        let mut record = Vec::new();
        loop {
            record.clear();
            match reader.read_until(0x1e, &mut record) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Some(link) = parse_record(&record) {
                seen.extend(link.ids.iter().cloned());
                links.push(link);
            }
            if walk.max_ids.is_some_and(|max| seen.len() >= max) {
                stopped_early = true;
                break;
            }
        }
    }
    if stopped_early {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|source| GitCmdError::Spawn {
        args: "log".into(),
        source,
    })?;
    let stderr = err_reader.join().unwrap_or_default();
    if !stopped_early && !status.success() {
        return Err(LinkError::BadRevision(
            stderr.trim().trim_start_matches("fatal: ").to_string(),
        ));
    }
    Ok(links)
}

fn parse_record(record: &[u8]) -> Option<Link> {
    let text = String::from_utf8_lossy(record);
    let text = text.trim_end_matches('\u{1e}');
    let (commit, message) = text.split_once('\u{1f}')?;
    let commit = commit.trim();
    if commit.is_empty() {
        return None;
    }
    let ids = parse_trailers(message);
    if ids.is_empty() {
        return None;
    }
    Some(Link {
        commit: commit.to_string(),
        subject: message.lines().next().unwrap_or("").to_string(),
        ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_table() {
        let cases: &[(&str, &[&str])] = &[
            ("fix\n\nEntire-Checkpoint: a3b2c4d5e6c4\n", &["a3b2c4d5e6c4"]),
            (
                "squash\n\n* one\n\nEntire-Checkpoint: a3b2c4d5e6c4\n\n* two\n\nentire-checkpoint: 01M3WE2VX9HQC3NVY9BWYCW6JV\nEntire-Checkpoint: a3b2c4d5e6c4\n",
                &["a3b2c4d5e6c4", "01M3WE2VX9HQC3NVY9BWYCW6JV"],
            ),
            ("no trailer\n", &[]),
            ("bad\n\nEntire-Checkpoint: ../../etc\nEntire-Checkpoint: A3B2C4D5E6C4\n", &[]),
            ("indented\n\n  Entire-Checkpoint: a3b2c4d5e6c4\n", &[]),
            ("Other-Key: a3b2c4d5e6c4\n", &[]),
        ];
        for (msg, want) in cases {
            let got: Vec<String> = parse_trailers(msg).iter().map(|i| i.to_string()).collect();
            assert_eq!(got, *want, "{msg:?}");
        }
    }

    #[test]
    fn record_parsing() {
        let rec = b"\n0123456789abcdef0123456789abcdef01234567\x1fsubject line\n\nEntire-Checkpoint: a3b2c4d5e6c4\n\n\x1e";
        let link = parse_record(rec).expect("a link");
        assert_eq!(link.commit, "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(link.subject, "subject line");
        assert_eq!(link.ids.len(), 1);
        assert!(parse_record(b"\x1e").is_none());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_messages_never_panic(message in "(?s).{0,300}") {
            for id in parse_trailers(&message) {
                proptest::prop_assert!(CheckpointId::parse(id.as_str()).is_ok());
            }
        }

        #[test]
        fn trailers_round_trip(ids in proptest::collection::vec("[0-9a-f]{12}", 1..5)) {
            let mut message = String::from("subject\n\nbody\n\n");
            for id in &ids {
                message.push_str(&format!("Entire-Checkpoint: {id}\n"));
            }
            let mut want: Vec<String> = Vec::new();
            for id in ids {
                if !want.contains(&id) {
                    want.push(id);
                }
            }
            let got: Vec<String> = parse_trailers(&message).iter().map(|i| i.to_string()).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }
}
