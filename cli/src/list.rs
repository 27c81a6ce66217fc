//! `git entire list [<rev-range>]`: the checkpoints linked from code commits by `Entire-Checkpoint` trailers,
//! newest first. Checkpoints missing locally are fetched in ONE batch (unless `--no-fetch`); IDs the remote
//! does not have either are listed as `missing` (dangling trailers are normal). An unreachable remote is a
//! warning here: the list is still printed, with those checkpoints marked `unavailable`. A checkpoint held by
//! the local v2 layout (`v2/main`) counts as local.

use std::collections::HashMap;
use std::io::Write;

use serde_json::json;

use super::{CliError, Exit, Global};
use entire::git::repo::Repo;
use entire::model::id::CheckpointId;
use entire::store;
use entire::sync::fetch;
use entire::sync::linked::{self, Walk};
use entire::sync::remote;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Revision range to scan, as for `git log` (default: HEAD).
    range: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Do not fetch checkpoints missing locally.
    #[arg(long)]
    no_fetch: bool,
    /// Stop after this many checkpoints.
    #[arg(short = 'n', long)]
    max_count: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Local,
    Fetched,
    Missing,
    Unavailable,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Local => "local",
            State::Fetched => "fetched",
            State::Missing => "missing",
            State::Unavailable => "unavailable",
        }
    }
}

pub fn run(g: &Global, a: Args) -> Result<(), CliError> {
    let repo = Repo::discover_cwd()?;
    let revs = if a.range.is_empty() {
        vec!["HEAD".to_string()]
    } else {
        a.range.clone()
    };
    let walk = Walk {
        revs,
        max_ids: a.max_count,
        ..Walk::default()
    };
    let links =
        linked::scan(&remote::repo_dir(&repo), &walk).map_err(|e| CliError::new(Exit::User, e))?;
    let mut ids: Vec<CheckpointId> = Vec::new();
    for id in links.iter().flat_map(|l| l.ids.iter()) {
        if !ids.contains(id) && a.max_count.is_none_or(|m| ids.len() < m) {
            ids.push(id.clone());
        }
    }
    let states = resolve_states(g, &repo, &ids, a.no_fetch)?;
    let mut out = std::io::stdout().lock();
    let mut shown = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for link in &links {
        for id in &link.ids {
            if !ids.contains(id) || !shown.insert(id.clone()) {
                continue;
            }
            let state = states.get(id).copied().unwrap_or(State::Missing);
            rows.push((id, link, state));
        }
    }
    let res = if a.json {
        let doc: Vec<_> = rows
            .iter()
            .map(|(id, link, state)| {
                json!({
                    "id": id.as_str(),
                    "commit": link.commit,
                    "subject": link.subject,
                    "status": state.as_str(),
                })
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON value serializes")
        )
    } else {
        rows.iter().try_for_each(|(id, link, state)| {
            let short = link.commit.get(..12).unwrap_or(&link.commit);
            writeln!(out, "{id}\t{short}\t{}\t{}", state.as_str(), link.subject)
        })
    };
    match res.and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::new(Exit::Internal, e))
        }
        _ => Ok(()),
    }
}

fn resolve_states(
    g: &Global,
    repo: &Repo,
    ids: &[CheckpointId],
    no_fetch: bool,
) -> Result<HashMap<CheckpointId, State>, CliError> {
    let mut states = HashMap::new();
    let mut missing = Vec::new();
    for id in ids {
        if fetch::local_ref(repo, id)?.is_some() || store::v2::locate(repo, id)?.is_some() {
            states.insert(id.clone(), State::Local);
        } else {
            missing.push(id.clone());
        }
    }
    if missing.is_empty() || no_fetch {
        for id in missing {
            states.insert(id, State::Missing);
        }
        return Ok(states);
    }
    let rollout = entire::store::settings::load(repo.workdir().as_deref())?.rollout;
    match super::fetch::fetch_for_read(repo, rollout, &missing) {
        Ok(report) => {
            for id in report.fetched {
                states.insert(id, State::Fetched);
            }
            for id in report.present {
                states.insert(id, State::Local);
            }
            // Not a ref of its own on the remote, but possibly in the `v2/main` that came along.
            for id in report.not_on_remote {
                let state = match store::v2::locate(repo, &id)? {
                    Some(_) => State::Fetched,
                    None => State::Missing,
                };
                states.insert(id, state);
            }
        }
        Err(e) if e.exit == Exit::Unreachable => {
            if !g.quiet {
                eprintln!("warning: {}; showing local checkpoints only", e.error);
            }
            for id in missing {
                states.insert(id, State::Unavailable);
            }
        }
        Err(e) => return Err(e),
    }
    Ok(states)
}
