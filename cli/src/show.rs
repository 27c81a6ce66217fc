//! `git entire show`: print a checkpoint's root metadata or one file inside it, fetching what is missing
//! locally first (one round trip, see `entire::sync::lazy`).

use std::io::Write;

use serde_json::json;

use super::{open_repo, CliError, Global};
use entire::model::id::CheckpointId;
use entire::model::refname;
use entire::store;
use entire::store::settings::Backend;
use entire::sync::lazy::{self, Read};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Checkpoint ID.
    id: String,
    /// Path inside the checkpoint, e.g. `0/full.jsonl` (chunks are reassembled; in the v2 layout also
    /// `0/raw_transcript`, `0/transcript.jsonl`); default: `metadata.json`.
    path: Option<String>,
    /// Print a JSON object with where the checkpoint was found and the content.
    #[arg(long)]
    json: bool,
    /// Do not fetch from the remote what is missing locally. Without it, a missing checkpoint (with `v2/main`
    /// when v2 is on) and, for a v2 raw transcript no local `/full` generation holds, the remote's `v2/full/*`
    /// generations are fetched first, in one round trip; a diverged local ref is never overwritten.
    #[arg(long)]
    no_fetch: bool,
}

pub fn run(_g: &Global, a: Args) -> Result<(), CliError> {
    let id = CheckpointId::parse(&a.id)?;
    let (repo, settings) = open_repo()?;
    let path = a.path.as_deref().unwrap_or("metadata.json");
    let read = if a.no_fetch {
        match store::find(&repo, settings.rollout, &id)? {
            Some(located) => {
                let bytes = store::read(&repo, &id, &located, path)?;
                Read::Found { located, bytes }
            }
            None => Read::NotOnRemote,
        }
    } else {
        lazy::read_or_fetch(&repo, settings.rollout, &id, path).map_err(super::fetch::lazy_error)?
    };
    let (found, bytes) = match read {
        Read::Found { located, bytes } => (located, bytes),
        missing => {
            let mut places = refname::spellings(&id);
            places.push(refname::LEGACY_BRANCH.to_string());
            if settings.rollout.writes(Backend::V2) || repo.find_ref(refname::V2_MAIN)?.is_some() {
                places.push(refname::V2_MAIN.to_string());
            }
            let where_ = match missing {
                _ if a.no_fetch => "locally",
                Read::NoRemote => "locally, and there is no remote to fetch it from",
                _ => "locally or on the remote",
            };
            return Err(CliError::user(format!(
                "checkpoint {id} not found {where_} (looked in {})",
                places.join(", ")
            )));
        }
    };
    let Some(bytes) = bytes else {
        return Err(CliError::user(format!(
            "checkpoint {id} has no file {path:?} (found in {})",
            found.ref_name
        )));
    };
    let mut out = std::io::stdout().lock();
    let res = if a.json {
        let content = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(v) if path.ends_with(".json") => v,
            _ => json!(String::from_utf8_lossy(&bytes)),
        };
        let doc = json!({
            "id": id.as_str(),
            "store": found.backend,
            "ref": found.ref_name,
            "commit": found.commit.to_string(),
            "path": path,
            "content": content,
            "tasks": task_ids(&repo, found.tree),
        });
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON value serializes")
        )
    } else {
        out.write_all(&bytes)
    };
    res.and_then(|_| out.flush()).or_else(ignore_broken_pipe)
}

fn ignore_broken_pipe(e: std::io::Error) -> Result<(), CliError> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(CliError::new(super::Exit::Internal, e))
    }
}

/// Tool-use IDs of the checkpoint's task records: the root `tasks/` tree (refs, legacy branch) and, where a
/// layout keeps them per session, each slot's `tasks/`.
fn task_ids(repo: &entire::git::repo::Repo, tree: entire::git::repo::ObjectId) -> Vec<String> {
    let mut ids = Vec::new();
    let entries = repo.tree_entries(tree).unwrap_or_default();
    let mut dirs: Vec<_> = entries
        .iter()
        .filter(|e| e.is_tree && e.name == "tasks")
        .map(|e| e.id)
        .collect();
    for slot in entries
        .iter()
        .filter(|e| e.is_tree && e.name.parse::<usize>().is_ok())
    {
        if let Ok(Some(t)) = repo.lookup(slot.id, "tasks") {
            dirs.push(t.id);
        }
    }
    for d in dirs {
        for t in repo.tree_entries(d).unwrap_or_default() {
            if t.is_tree && !ids.contains(&t.name) {
                ids.push(t.name);
            }
        }
    }
    ids.sort();
    ids
}
