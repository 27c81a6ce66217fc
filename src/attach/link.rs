//! Linking a code commit to a checkpoint through its `Entire-Checkpoint` trailer.
//!
//! Rules (upstream's attach, seed 004):
//! - The target commit's **last** `Entire-Checkpoint` trailer names the checkpoint a session joins.
//! - Only an unpushed HEAD is ever rewritten, and only its message: `git commit --amend --only` keeps the index
//!   out of the amend (a dirty index stays as it was), keeps the author, and signs as the user's git
//!   configuration says; hooks run as for any amend. A commit that any remote-tracking branch contains counts as
//!   pushed (what the repository knows locally; nothing is fetched to decide).
//! - The trailer goes into the message's trailer block through `git interpret-trailers`, so git's own rules for
//!   trailer blocks apply.
//!
//! Everything here runs git children in the worktree; failures carry git's message.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use super::AttachError;
use crate::git::cmd as gitcmd;
use crate::model::id::CheckpointId;
use crate::sync::linked::{self, TRAILER};

/// The commit a session is attached to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Full hex commit ID.
    pub commit: String,
    pub subject: String,
    pub message: String,
    /// Whether the target is what HEAD points at.
    pub is_head: bool,
}

impl Target {
    /// The checkpoint the commit already links to (its last trailer).
    pub fn linked_checkpoint(&self) -> Option<CheckpointId> {
        linked::parse_trailers(&self.message).pop()
    }

    pub fn short(&self) -> &str {
        &self.commit[..self.commit.len().min(7)]
    }
}

fn git_in(dir: &Path, args: &[&str]) -> Result<String, AttachError> {
    let mut cmd = gitcmd::git();
    cmd.current_dir(dir).args(args);
    Ok(gitcmd::run_ok(&mut cmd)?)
}

/// Resolve `rev` (default `HEAD`) to a commit and read its message.
pub fn target(dir: &Path, rev: Option<&str>) -> Result<Target, AttachError> {
    let rev = rev.unwrap_or("HEAD");
    let spec = format!("{rev}^{{commit}}");
    let commit = match git_in(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    ) {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ if rev == "HEAD" => return Err(AttachError::NoCommits),
        _ => return Err(AttachError::BadRevision(rev.to_string())),
    };
    let message = git_in(dir, &["cat-file", "commit", &commit])?;
    let message = message
        .split_once("\n\n")
        .map(|(_, m)| m.to_string())
        .unwrap_or_default();
    let head = git_in(dir, &["rev-parse", "--verify", "--quiet", "HEAD"]).unwrap_or_default();
    Ok(Target {
        subject: message.lines().next().unwrap_or("").to_string(),
        is_head: head.trim() == commit,
        commit,
        message,
    })
}

/// Remote-tracking branches that contain `commit` (empty: not pushed as far as this repository knows).
pub fn pushed_to(dir: &Path, commit: &str) -> Result<Vec<String>, AttachError> {
    let out = git_in(
        dir,
        &[
            "for-each-ref",
            "--format=%(refname:short)",
            "--contains",
            commit,
            "refs/remotes/",
        ],
    )?;
    Ok(out
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect())
}

/// Run `cmd` in `dir` with `input` on stdin; git's stdout on success, its stderr as the error otherwise.
fn run_with_input(dir: &Path, args: &[&str], input: &str) -> Result<String, AttachError> {
    let what = format!("git {}", args.first().copied().unwrap_or(""));
    let mut cmd = gitcmd::git();
    cmd.current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = gitcmd::spawn(&mut cmd)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| AttachError::Amend(format!("{what}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| AttachError::Amend(format!("{what}: {e}")))?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(AttachError::Amend(if why.is_empty() {
            format!("{what} exited with {}", out.status)
        } else {
            why
        }));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `message` with `Entire-Checkpoint: <id>` added to its trailer block (git's rules).
pub fn with_trailer(dir: &Path, message: &str, id: &CheckpointId) -> Result<String, AttachError> {
    let trailer = format!("{TRAILER}: {id}");
    run_with_input(
        dir,
        &[
            "interpret-trailers",
            "--if-exists",
            "addIfDifferent",
            "--trailer",
            &trailer,
        ],
        message,
    )
}

/// Amend HEAD's message to carry the trailer for `id`; returns the new commit ID.
pub fn amend_head(dir: &Path, target: &Target, id: &CheckpointId) -> Result<String, AttachError> {
    let message = with_trailer(dir, &target.message, id)?;
    run_with_input(
        dir,
        &[
            "commit",
            "--amend",
            "--only",
            "--allow-empty",
            "--cleanup=verbatim",
            "-q",
            "-F",
            "-",
        ],
        &message,
    )?;
    Ok(git_in(dir, &["rev-parse", "HEAD"])?.trim().to_string())
}
