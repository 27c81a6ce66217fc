//! `git entire fetch <id>…`: fetch checkpoint refs from the checkpoint remote in one round trip.
//!
//! Also maps the library's lazy fetch ([`entire::sync::lazy`]) for `show` and `list`: all missing IDs in one fetch,
//! exit 3 when the remote cannot be reached, never an error for IDs the remote simply does not have.

use std::io::Write;

use super::{CliError, Exit, Global};
use entire::git::repo::Repo;
use entire::model::id::CheckpointId;
use entire::store::settings::Rollout;
use entire::sync::fetch::{self, FetchError, FetchReport};
use entire::sync::lazy::{self, LazyError};
use entire::sync::remote::{self, RemoteError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Checkpoint IDs to fetch.
    #[arg(required = true)]
    ids: Vec<String>,
    /// Remote to fetch from (default: the checkpoint remote, else origin).
    #[arg(long)]
    remote: Option<String>,
}

pub fn run(g: &Global, a: Args) -> Result<(), CliError> {
    let ids = a
        .ids
        .iter()
        .map(|s| CheckpointId::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let repo = Repo::discover_cwd()?;
    let endpoint = remote::checkpoint_remote(&repo, a.remote.as_deref()).map_err(remote_error)?;
    let report = fetch::fetch_missing(&repo, &endpoint.fetch_url, &ids).map_err(fetch_error)?;
    warn_refused(endpoint.display(), &report);
    let mut out = std::io::stdout().lock();
    if !g.quiet {
        for id in &report.fetched {
            let _ = writeln!(out, "fetched {id}");
        }
        for id in &report.present {
            let _ = writeln!(out, "present {id}");
        }
    }
    let _ = out.flush();
    if report.not_on_remote.is_empty() {
        return Ok(());
    }
    let missing: Vec<String> = report.not_on_remote.iter().map(|i| i.to_string()).collect();
    Err(CliError::user(format!(
        "not on the remote {}: {}",
        endpoint.display(),
        missing.join(", ")
    )))
}

/// Report (once each) the refs the remote served that were refused.
pub fn warn_refused(remote: &str, report: &FetchReport) {
    for why in &report.refused {
        eprintln!("warning: entire: refused a ref {remote} serves: {why}");
    }
}

/// Map a fetch failure to its exit code: unreachable remote → 3.
pub fn fetch_error(e: FetchError) -> CliError {
    match e {
        FetchError::Unreachable { .. } => CliError::new(Exit::Unreachable, e)
            .hint("check the remote's URL and your network or credentials, then retry"),
        other => CliError::new(Exit::Internal, other),
    }
}

/// Map a remote-resolution failure: a missing remote is the user's to fix (exit 1).
pub fn remote_error(e: RemoteError) -> CliError {
    match e {
        RemoteError::NoRemote { .. } => CliError::new(Exit::User, e)
            .hint("add a remote, or set one with `git config entire.remote <remote>`"),
        other => CliError::new(Exit::User, other),
    }
}

/// Lazily fetch `ids` that are missing locally from the checkpoint remote, in one round trip (the library's
/// [`entire::sync::lazy::fetch_for_read`]). Without any usable remote nothing is fetched and every missing ID is
/// reported as not on the remote; an unreachable remote is an error with exit code 3.
pub fn fetch_for_read(
    repo: &Repo,
    rollout: Rollout,
    ids: &[CheckpointId],
) -> Result<FetchReport, CliError> {
    match lazy::fetch_for_read(repo, rollout, ids).map_err(lazy_error)? {
        Some(report) => {
            warn_refused("the checkpoint remote", &report);
            Ok(report)
        }
        None => {
            let mut report = FetchReport::default();
            for id in ids {
                match fetch::local_ref(repo, id)? {
                    Some(_) => report.present.push(id.clone()),
                    None => report.not_on_remote.push(id.clone()),
                }
            }
            Ok(report)
        }
    }
}

/// Map a lazy-read failure to its exit code.
pub fn lazy_error(e: LazyError) -> CliError {
    match e {
        LazyError::Fetch(e) => fetch_error(e),
        LazyError::Remote(e) => remote_error(e),
        other => CliError::new(Exit::Internal, other),
    }
}
