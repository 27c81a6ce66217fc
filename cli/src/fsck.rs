//! `git entire fsck`: check that every checkpoint ref's shard, ID, metadata and content hashes agree, and the
//! invariants of the v2 layout when it exists ([`v2`]).

mod v2;

use serde_json::json;

use super::{open_repo, CliError, Exit, Global};
use entire::git::repo::{ObjectId, Repo};
use entire::model::id::CheckpointId;
use entire::model::metadata::{self, RootMetadata};
use entire::model::validate;
use entire::model::{refname, transcript};
use entire::store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Also check every checkpoint on the legacy branch.
    #[arg(long)]
    legacy: bool,
}

/// One problem found.
struct Problem {
    subject: String,
    problem: String,
}

pub fn run(g: &Global, a: Args) -> Result<(), CliError> {
    let (repo, _) = open_repo()?;
    let mut problems = Vec::new();
    let mut checked = 0usize;
    for (name, commit) in repo.refs_with_prefix(refname::CHECKPOINT_PREFIX)? {
        if refname::is_v2_ref(&name) {
            continue;
        }
        checked += 1;
        let mut report = |problem: String| {
            problems.push(Problem {
                subject: name.clone(),
                problem,
            })
        };
        let id = match refname::parse(&name) {
            Ok(id) => id,
            Err(e) => {
                report(e.to_string());
                continue;
            }
        };
        if let Some(why) = entire::sync::fetch::invalid_ref(&repo, &name, commit) {
            report(why);
            continue;
        }
        let tree = match repo.commit_tree(commit) {
            Ok(t) => t,
            Err(e) => {
                report(format!("does not point at a readable commit: {e}"));
                continue;
            }
        };
        for p in check_tree(&repo, &id, tree) {
            report(p);
        }
    }
    if a.legacy {
        checked += check_legacy(&repo, &mut problems)?;
    }
    checked += v2::check(&repo, &mut problems)?;
    if a.json {
        let list: Vec<_> = problems
            .iter()
            .map(|p| json!({"subject": p.subject, "problem": p.problem}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"checked": checked, "problems": list}))
                .expect("JSON")
        );
    } else {
        for p in &problems {
            println!("{}: {}", p.subject, p.problem);
        }
        if !g.quiet {
            eprintln!(
                "checked {checked} checkpoint(s), {} problem(s)",
                problems.len()
            );
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::new(
            Exit::User,
            anyhow::anyhow!("{} problem(s) found", problems.len()),
        ))
    }
}

/// Check every checkpoint on the legacy branch; returns how many were checked.
fn check_legacy(repo: &Repo, problems: &mut Vec<Problem>) -> Result<usize, CliError> {
    let Some(tip) = store::branch::tip(repo)? else {
        return Ok(0);
    };
    let mut checked = 0;
    let root = repo.commit_tree(tip)?;
    for shard in repo.tree_entries(root)?.into_iter().filter(|e| e.is_tree) {
        for cp in repo
            .tree_entries(shard.id)?
            .into_iter()
            .filter(|e| e.is_tree)
        {
            checked += 1;
            let subject = format!("{}:{}/{}", refname::LEGACY_BRANCH, shard.name, cp.name);
            let found = match CheckpointId::parse(&format!("{}{}", shard.name, cp.name)) {
                Ok(id) => check_tree(repo, &id, cp.id),
                Err(e) => vec![e.to_string()],
            };
            problems.extend(found.into_iter().map(|problem| Problem {
                subject: subject.clone(),
                problem,
            }));
        }
    }
    Ok(checked)
}

/// Problems of one checkpoint tree.
fn check_tree(repo: &Repo, id: &CheckpointId, tree: ObjectId) -> Vec<String> {
    let mut out = Vec::new();
    match store::read_path(repo, tree, "metadata.json") {
        Ok(Some(bytes)) => match RootMetadata::parse(&bytes, "metadata.json") {
            Ok(root) if root.checkpoint_id() != Some(id.as_str()) => out.push(format!(
                "metadata.json names checkpoint {:?}",
                root.checkpoint_id().unwrap_or("")
            )),
            Ok(_) => {}
            Err(e) => out.push(e.to_string()),
        },
        Ok(None) => out.push("no metadata.json".into()),
        Err(e) => out.push(e.to_string()),
    }
    let Ok(entries) = repo.tree_entries(tree) else {
        out.push("tree is unreadable".into());
        return out;
    };
    out.extend(check_entries(repo, tree));
    if let Some(tasks) = entries.iter().find(|e| e.name == "tasks") {
        out.extend(check_tasks(repo, tasks.id, tasks.is_tree));
    }
    for slot in entries
        .iter()
        .filter(|e| e.is_tree && e.name.parse::<u32>().is_ok())
    {
        out.extend(check_slot(repo, id, tree, &slot.name));
    }
    out
}

/// The root `tasks/` tree: one directory per valid tool-use ID; agent transcripts named `agent-<agent-id>.jsonl`
/// with a valid agent ID.
fn check_tasks(repo: &Repo, tree: ObjectId, is_tree: bool) -> Vec<String> {
    if !is_tree {
        return vec!["tasks is a file, expected a directory of task records".into()];
    }
    let Ok(entries) = repo.tree_entries(tree) else {
        return vec!["tasks/ is unreadable".into()];
    };
    let mut out = Vec::new();
    for task in entries {
        if let Err(e) = validate::tool_use_id(&task.name) {
            out.push(format!("tasks/{}: {e}", task.name));
            continue;
        }
        if !task.is_tree {
            out.push(format!(
                "tasks/{} is a file, expected a task directory",
                task.name
            ));
            continue;
        }
        for f in repo.tree_entries(task.id).unwrap_or_default() {
            let agent = f
                .name
                .strip_prefix("agent-")
                .and_then(|n| n.strip_suffix(".jsonl"));
            if let Some(agent) = agent {
                if let Err(e) = validate::agent_id(agent) {
                    out.push(format!("tasks/{}/{}: {e}", task.name, f.name));
                }
            }
        }
    }
    out
}

/// Entries anywhere in a checkpoint tree that are not plain names (`..`, `a/b`, NUL) or not plain files and
/// directories (symbolic links, submodules).
fn check_entries(repo: &Repo, tree: ObjectId) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![(String::new(), tree)];
    while let Some((prefix, tree)) = todo.pop() {
        let Ok(t) = repo.gix().find_tree(tree) else {
            out.push(format!("{prefix}: tree {tree} is unreadable"));
            continue;
        };
        let Ok(decoded) = t.decode() else {
            out.push(format!("{prefix}: tree {tree} cannot be decoded"));
            continue;
        };
        for e in &decoded.entries {
            let raw: &[u8] = e.filename.as_ref();
            let name = String::from_utf8_lossy(raw);
            let path = format!("{prefix}{name}");
            if raw.is_empty()
                || raw == b"."
                || raw == b".."
                || raw.contains(&b'/')
                || raw.contains(&0)
            {
                out.push(format!("tree entry {path:?} is not a plain name"));
                continue;
            }
            if e.mode.is_link() {
                out.push(format!("{path} is a symbolic link, expected a file"));
            } else if e.mode.is_commit() {
                out.push(format!("{path} is a submodule, expected a file"));
            } else if e.mode.is_tree() {
                todo.push((format!("{path}/"), e.oid.to_owned()));
            }
        }
    }
    out
}

fn check_slot(repo: &Repo, id: &CheckpointId, tree: ObjectId, slot: &str) -> Vec<String> {
    let mut out = Vec::new();
    let read = |name: &str| {
        store::read_path(repo, tree, &format!("{slot}/{name}"))
            .ok()
            .flatten()
    };
    match read("metadata.json")
        .map(|b| metadata::parse_object(&b, &format!("{slot}/metadata.json")))
    {
        Some(Ok(m)) => {
            if let Some(cid) =
                metadata::str_field(&m, "checkpoint_id").filter(|c| *c != id.as_str())
            {
                out.push(format!("{slot}/metadata.json names checkpoint {cid:?}"));
            }
        }
        Some(Err(e)) => out.push(e.to_string()),
        None => out.push(format!("{slot}/metadata.json is missing")),
    }
    if let (Some(hash), Some(data)) = (read("content_hash.txt"), read(transcript::TRANSCRIPT)) {
        let want = String::from_utf8_lossy(&hash).trim().to_string();
        if want != transcript::content_hash(&data) {
            out.push(format!(
                "{slot}/content_hash.txt does not match {slot}/full.jsonl"
            ));
        }
    }
    out
}
