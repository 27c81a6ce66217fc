//! `git entire push [<remote>]`: flush the checkpoint push queue, with the same batching and accounting as the
//! remote helper (git never calls the helper when it has nothing of its own to push).
//!
//! `--reconcile` lists the remote's checkpoint refs (prefix listing), queues every local checkpoint ref the
//! remote lacks — including refs that were never queued, or were dequeued by a push to another remote — and
//! then flushes.

use std::collections::HashMap;

use super::{fetch::remote_error, CliError, Exit, Global};
use entire::git::cmd as gitcmd;
use entire::git::lsrefs::{self, RefValue};
use entire::git::repo::{ObjectId, Repo};
use entire::model::refname::CHECKPOINT_PREFIX;
use entire::store::queue::Queue;
use entire::sync::push::{self, GitPush, PushOptions};
use entire::sync::remote::{self, Transport};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remote to push to (default: the checkpoint remote, else origin).
    remote: Option<String>,
    /// Also push every local checkpoint ref the remote lacks, queued or not.
    #[arg(long)]
    reconcile: bool,
    /// Show what would be pushed; nothing is dequeued.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Show progress even when stderr is not a terminal.
    #[arg(long)]
    progress: bool,
}

pub fn run(g: &Global, a: Args) -> Result<(), CliError> {
    let repo = Repo::discover_cwd()?;
    let endpoint = remote::checkpoint_remote(&repo, a.remote.as_deref()).map_err(remote_error)?;
    if a.reconcile {
        let (queued, differing) = reconcile(&repo, &endpoint.push_url)?;
        if !g.quiet {
            eprintln!(
                "entire: {queued} local checkpoint(s) missing on {}{}",
                endpoint.display(),
                if differing > 0 {
                    format!("; {differing} differ from the remote and are left alone")
                } else {
                    String::new()
                }
            );
        }
    }
    let options = PushOptions {
        dry_run: a.dry_run,
        progress: a.progress,
        verbosity: if g.quiet { 0 } else { 1 + u32::from(g.verbose) },
        ..PushOptions::default()
    };
    let mut transport = GitPush::new(&endpoint.push_url);
    let outcome = push::run(
        Some(&repo),
        endpoint.name.as_deref(),
        &mut transport,
        &[],
        &options,
        true,
    );
    // One line per shared ref or checkpoint a recovery could not deliver, with the reason (as the helper
    // prints them).
    for note in &outcome.notes {
        eprintln!("{note}");
    }
    if let Some(failure) = outcome.checkpoint_failure {
        return Err(CliError::new(
            Exit::Unreachable,
            anyhow::anyhow!("could not push to {}: {failure}", endpoint.display()),
        )
        .hint("the checkpoints stay queued; retry with `git entire push`"));
    }
    if let Some(failure) = outcome.prepare_failure {
        return Err(CliError::new(
            Exit::Internal,
            anyhow::anyhow!("queued checkpoints were not pushed: {failure}"),
        )
        .hint("they stay queued; retry with `git entire push`"));
    }
    let Some(summary) = outcome.checkpoints else {
        if !g.quiet {
            eprintln!("entire: nothing to push");
        }
        return Ok(());
    };
    if !g.quiet {
        if let Some(line) = summary.line(endpoint.display()) {
            eprintln!("{line}");
        }
    }
    if summary.kept.is_empty() {
        return Ok(());
    }
    let mut msg = format!(
        "{} checkpoint(s) were not accepted by {}:",
        summary.kept.len(),
        endpoint.display()
    );
    for (name, why) in summary.kept.iter().take(10) {
        msg.push_str(&format!("\n  {name}: {why}"));
    }
    Err(CliError::user(msg).hint("they stay queued for the next push"))
}

/// Queue every local checkpoint ref that `url` lacks. Returns (queued, differing).
fn reconcile(repo: &Repo, url: &str) -> Result<(usize, usize), CliError> {
    let remote_refs = remote_checkpoint_refs(repo, url)?;
    let mut missing = Vec::new();
    let mut differing = 0;
    for (name, value) in repo.refs_with_prefix(CHECKPOINT_PREFIX)? {
        if let Some(why) = entire::sync::fetch::invalid_ref(repo, &name, value) {
            // Only commits under checkpoint names are pushed on; the rest is reported and left alone.
            eprintln!("warning: entire: not pushing {why}");
            continue;
        }
        match remote_refs.get(&name) {
            None => missing.push(name),
            Some(v) if *v != value => differing += 1,
            Some(_) => {}
        }
    }
    Queue::new(&repo.common_dir()).enqueue(&missing)?;
    Ok((missing.len(), differing))
}

/// The remote's checkpoint refs: a prefix listing in-process where gix can reach the URL, else `git ls-remote`.
fn remote_checkpoint_refs(repo: &Repo, url: &str) -> Result<HashMap<String, ObjectId>, CliError> {
    let unreachable = |e: &dyn std::fmt::Display| {
        CliError::new(Exit::Unreachable, anyhow::anyhow!("cannot list {url}: {e}"))
    };
    entire::sync::policy::check(Some(repo), url).map_err(CliError::user)?;
    let mut out = HashMap::new();
    if remote::transport_of(url) == Transport::Own {
        let listing =
            lsrefs::ls_refs(Some(repo), url, &[CHECKPOINT_PREFIX]).map_err(|e| unreachable(&e))?;
        for r in listing.refs {
            if let RefValue::Object { id, .. } = r.value {
                out.insert(r.name, id);
            }
        }
        return Ok(out);
    }
    let mut cmd = gitcmd::git();
    cmd.arg("-C")
        .arg(remote::repo_dir(repo))
        .args(["ls-remote", "--refs", url])
        .arg(format!("{CHECKPOINT_PREFIX}*"));
    let text = gitcmd::run_ok(&mut cmd).map_err(|e| unreachable(&e))?;
    for line in text.lines() {
        if let Some((oid, name)) = line.split_once('\t') {
            if let Ok(id) = ObjectId::from_hex(oid.as_bytes()) {
                out.insert(name.to_string(), id);
            }
        }
    }
    Ok(out)
}
