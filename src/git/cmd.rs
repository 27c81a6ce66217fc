//! Child `git` processes: the one place that decides how the library and the remote helper run git.
//!
//! Invariants (remote-helper-protocol.md §7, pitfalls 1 and 12):
//! - stdin is `/dev/null`, so a child never swallows the protocol git writes to the helper;
//! - stdout is never inherited: it is piped (and parsed) or discarded, because the helper's stdout is the
//!   protocol;
//! - messages are in the C locale (`LC_ALL=C`, `LC_MESSAGES=C`) so porcelain and error texts can be matched;
//! - `core.fsmonitor` and `submodule.recurse` are off, so no daemon or submodule walk can hang a child;
//! - [`DEPTH_ENV`] is incremented in every child, so a URL that resolves back to `entire::` (for example through
//!   `url.<base>.insteadOf`) is refused by the nested helper instead of recursing forever.
//!
//! Failure modes: [`GitCmdError`] distinguishes "could not start git" from "git failed", and keeps the child's
//! stderr for the message.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};

/// Environment variable counting how deeply `git-remote-entire` is nested inside its own children.
pub const DEPTH_ENV: &str = "ENTIRE_REMOTE_HELPER_DEPTH";

/// Errors of running a child git.
#[derive(Debug, thiserror::Error)]
pub enum GitCmdError {
    #[error("cannot run `git {args}`")]
    Spawn {
        args: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`git {args}` failed ({status}): {stderr}")]
    Failed {
        args: String,
        status: String,
        stderr: String,
    },
}

/// The nesting depth this process runs at (0 when git or the user started it directly).
pub fn depth() -> u32 {
    std::env::var(DEPTH_ENV)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A `git` command with the invariants above applied; stdout and stderr are piped.
pub fn git() -> Command {
    let mut c = Command::new("git");
    c.args([
        "-c",
        "core.fsmonitor=false",
        "-c",
        "submodule.recurse=false",
    ])
    .env("LC_ALL", "C")
    .env("LC_MESSAGES", "C")
    .env(DEPTH_ENV, (depth() + 1).to_string())
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

/// Human-readable argument list of a command, for error messages.
pub fn describe(cmd: &Command) -> String {
    cmd.get_args()
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Spawn `cmd`.
pub fn spawn(cmd: &mut Command) -> Result<Child, GitCmdError> {
    cmd.spawn().map_err(|source| GitCmdError::Spawn {
        args: describe(cmd),
        source,
    })
}

/// Output of a finished child.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    /// stdout as (lossy) text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as (lossy) text, trimmed.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

/// Run `cmd` to completion, capturing stdout and stderr.
pub fn output(cmd: &mut Command) -> Result<Finished, GitCmdError> {
    let out = cmd.output().map_err(|source| GitCmdError::Spawn {
        args: describe(cmd),
        source,
    })?;
    Ok(Finished {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Run `cmd`, requiring success; returns stdout as text.
pub fn run_ok(cmd: &mut Command) -> Result<String, GitCmdError> {
    let out = output(cmd)?;
    if !out.status.success() {
        return Err(GitCmdError::Failed {
            args: describe(cmd),
            status: out.status.to_string(),
            stderr: out.stderr_text(),
        });
    }
    Ok(out.stdout_text())
}

/// True when commit `a` is an ancestor of (or equal to) `b` in the repository at `dir`
/// (`git merge-base --is-ancestor`; exit 1 is "no", anything else but 0 an error).
pub fn is_ancestor(
    dir: &std::path::Path,
    a: crate::git::repo::ObjectId,
    b: crate::git::repo::ObjectId,
) -> Result<bool, GitCmdError> {
    if a == b {
        return Ok(true);
    }
    let mut cmd = git();
    cmd.arg("-C").arg(dir).args([
        "merge-base",
        "--is-ancestor",
        &a.to_string(),
        &b.to_string(),
    ]);
    let out = output(&mut cmd)?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(GitCmdError::Failed {
            args: "merge-base --is-ancestor".into(),
            status: out.status.to_string(),
            stderr: out.stderr_text(),
        }),
    }
}

/// Copy a child's stderr to our stderr as it arrives, dropping complete lines for which `drop` returns true.
/// Returns everything that was read, for error messages.
pub fn forward_stderr(from: impl Read, drop: impl Fn(&str) -> bool) -> Vec<u8> {
    forward_filtered(from, &mut std::io::stderr(), drop)
}

/// Copy `from` to `err` as it arrives, dropping complete lines for which `drop` returns true.
///
/// Progress output (segments ending in `\r`) is passed through immediately; only `\n`-terminated lines are
/// offered to `drop`. Returns everything that was read.
pub fn forward_filtered(
    mut from: impl Read,
    err: &mut impl Write,
    drop: impl Fn(&str) -> bool,
) -> Vec<u8> {
    let mut all = Vec::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        all.extend_from_slice(&buf[..n]);
        pending.extend_from_slice(&buf[..n]);
        while let Some(pos) = pending.iter().position(|&b| b == b'\n' || b == b'\r') {
            let segment: Vec<u8> = pending.drain(..=pos).collect();
            let is_line = segment.last() == Some(&b'\n');
            if is_line && drop(String::from_utf8_lossy(&segment).trim_end()) {
                continue;
            }
            let _ = err.write_all(&segment);
        }
        let _ = err.flush();
    }
    if !pending.is_empty() {
        let _ = err.write_all(&pending);
        let _ = err.flush();
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_drops_only_matching_lines() {
        let input: &[u8] =
            b"remote: one\rremote: two\nerror: failed to push some refs\nhint: x\ntail";
        let mut shown = Vec::new();
        let all = forward_filtered(input, &mut shown, |l| {
            l.starts_with("error: failed to push")
        });
        assert_eq!(all, input);
        assert_eq!(shown, b"remote: one\rremote: two\nhint: x\ntail");
    }
}
