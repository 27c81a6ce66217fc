//! Ref reads and transactions through git itself, for what gix cannot do in-process: the reftable backend
//! (`extensions.refStorage = reftable`) and repositories with a `reference-transaction` hook (git runs the hook
//! with its own stdin format and phases, so a veto stops our write exactly as it stops `git update-ref`).
//!
//! Invariants:
//! - One transaction = ONE `git update-ref --stdin` child fed `start`, one `update`/`create`/`delete` per ref
//!   with its expected old value, `prepare` and `commit`: compare-and-swap for every ref, all or nothing, and
//!   many refs still cost one process.
//! - Reads use `git for-each-ref` (one child per read), so they see exactly what git sees on any backend.
//!
//! Failure modes: a refusal by git (lost race, hook veto, lock held) is [`RepoError::Rejected`] carrying git's
//! message; the caller tells a lost race apart by re-reading the refs. A git that cannot start is
//! [`RepoError::Git`].

use std::io::Write;
use std::process::Stdio;

use super::cmd;
use super::repo::{ObjectId, RefUpdate, Repo, RepoError};

fn command(repo: &Repo) -> std::process::Command {
    let mut c = cmd::git();
    c.arg("--git-dir").arg(repo.git_dir());
    c
}

/// Apply `updates` in one `git update-ref --stdin` transaction.
pub(crate) fn transaction(
    repo: &Repo,
    updates: &[RefUpdate],
    reflog: &str,
) -> Result<(), RepoError> {
    let zero = ObjectId::null(repo.gix().object_hash());
    let mut script = String::from("start\n");
    for u in updates {
        let old = u.expected.unwrap_or(zero);
        match u.new {
            Some(new) => script.push_str(&format!("update {} {new} {old}\n", u.name)),
            None => script.push_str(&format!("delete {} {old}\n", u.name)),
        }
    }
    script.push_str("prepare\ncommit\n");
    let mut c = command(repo);
    c.args(["update-ref", "--stdin", "-m"])
        .arg(reflog.replace('\n', " "))
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut child = c.spawn().map_err(|e| RepoError::Git {
        what: "cannot run `git update-ref --stdin`".into(),
        source: Box::new(e),
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A refusing git may exit before reading everything; its status and stderr tell why.
        let _ = stdin.write_all(script.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| RepoError::Git {
        what: "cannot run `git update-ref --stdin`".into(),
        source: Box::new(e),
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(RepoError::Rejected {
        message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Every ref matching `pattern` (a full name or a prefix ending in `/`) with its value, sorted by name.
pub(crate) fn for_each_ref(
    repo: &Repo,
    pattern: &str,
) -> Result<Vec<(String, ObjectId)>, RepoError> {
    for_each_ref_many(repo, &[pattern])
}

/// [`for_each_ref`] for several patterns in one child.
pub(crate) fn for_each_ref_many<S: AsRef<str>>(
    repo: &Repo,
    patterns: &[S],
) -> Result<Vec<(String, ObjectId)>, RepoError> {
    let mut c = command(repo);
    c.args(["for-each-ref", "--format=%(objectname) %(refname)", "--"])
        .args(patterns.iter().map(AsRef::as_ref));
    let text = cmd::run_ok(&mut c).map_err(|e| RepoError::Git {
        what: format!(
            "cannot list refs matching {}",
            patterns.first().map_or("", AsRef::as_ref)
        ),
        source: Box::new(e),
    })?;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((hex, name)) = line.split_once(' ') else {
            continue;
        };
        let id = ObjectId::from_hex(hex.as_bytes()).map_err(|e| RepoError::Git {
            what: format!("git for-each-ref printed a bad object name for {name}"),
            source: Box::new(e),
        })?;
        out.push((name.to_string(), id));
    }
    out.sort();
    Ok(out)
}
