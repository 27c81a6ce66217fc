//! `git entire status`: rollout mode, store heads (legacy branch, checkpoint refs, the v2 layout with its
//! generations and pending publications), the shared refs against the checkpoint remote's last-known state
//! (local vs last pushed, and what is pending), push queue.

use serde_json::json;

use super::{open_repo, CliError, Global};
use entire::git::repo::Repo;
use entire::model::refname;
use entire::store;
use entire::store::queue::Queue;
use entire::store::settings::Backend;
use entire::store::v2::{layout, pending::Pending};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// What the v2 layout holds locally.
struct V2State {
    main: Option<String>,
    main_checkpoints: usize,
    current: Option<String>,
    current_checkpoints: usize,
    archives: Vec<(String, String)>,
    pending: Vec<String>,
}

fn v2_state(repo: &Repo) -> Result<V2State, CliError> {
    let main = repo.find_ref(layout::MAIN)?;
    let main_checkpoints = match main {
        Some(c) => layout::count_checkpoints(repo, repo.commit_tree(c)?)?,
        None => 0,
    };
    let current = repo.find_ref(layout::FULL_CURRENT)?;
    let current_checkpoints = match current {
        Some(c) => layout::count_checkpoints(repo, repo.commit_tree(c)?)?,
        None => 0,
    };
    let archives = layout::archives(repo)?
        .into_iter()
        .map(|(_, name, c)| (name, c.to_string()))
        .collect();
    let pending = Pending::new(&repo.common_dir())
        .list()
        .map_err(|e| CliError::new(super::Exit::Internal, e))?
        .into_iter()
        .map(|p| p.archive_ref_name)
        .collect();
    Ok(V2State {
        main: main.map(|c| c.to_string()),
        main_checkpoints,
        current: current.map(|c| c.to_string()),
        current_checkpoints,
        archives,
        pending,
    })
}

/// One shared ref: local value, last value a push confirmed on the remote, and what is pending.
struct SharedRef {
    name: String,
    local: Option<String>,
    remote: Option<String>,
    pending: &'static str,
}

/// The shared refs of this repository against the checkpoint remote's last-known state.
fn shared_refs(repo: &Repo, v2: &V2State, queued: &[String]) -> (Option<String>, Vec<SharedRef>) {
    let remote = entire::sync::remote::checkpoint_remote(repo, None)
        .ok()
        .and_then(|e| e.name);
    let known = remote
        .as_deref()
        .map(|r| entire::sync::shared::state::load(repo, r))
        .unwrap_or_default();
    let mut names = vec![refname::LEGACY_BRANCH.to_string(), layout::MAIN.to_string()];
    names.push(layout::FULL_CURRENT.to_string());
    names.extend(v2.archives.iter().map(|(n, _)| n.clone()));
    let rows = names
        .into_iter()
        .filter_map(|name| {
            let local = repo.find_ref(&name).ok().flatten().map(|c| c.to_string());
            let remote = known.get(&name).cloned();
            if local.is_none() && remote.is_none() {
                return None;
            }
            let pending = if v2.pending.contains(&name) {
                "pending publication"
            } else if local == remote {
                "in sync"
            } else if queued.contains(&name) {
                "queued"
            } else {
                "not pushed"
            };
            Some(SharedRef {
                name,
                local,
                remote,
                pending,
            })
        })
        .collect();
    (remote, rows)
}

pub fn run(_g: &Global, a: Args) -> Result<(), CliError> {
    let (repo, settings) = open_repo()?;
    let branch = store::branch::tip(&repo)?;
    let checkpoints = store::local_checkpoints(&repo)?;
    let v2 = v2_state(&repo)?;
    let queue = Queue::new(&repo.common_dir());
    let queued = queue.peek()?;
    let (remote, shared) = shared_refs(&repo, &v2, &queued);
    if a.json {
        let doc = json!({
            "mode": settings.rollout.name(),
            "primary": settings.rollout.primary,
            "mirrors": settings.rollout.mirrors,
            "legacy_branch": branch.map(|c| c.to_string()),
            "checkpoint_refs": checkpoints.len(),
            "v2": {
                "main": v2.main,
                "main_checkpoints": v2.main_checkpoints,
                "full_current": v2.current,
                "full_current_checkpoints": v2.current_checkpoints,
                "generation_limit": layout::max_per_generation(),
                "archives": v2.archives.iter().map(|(n, c)| json!({"ref": n, "commit": c})).collect::<Vec<_>>(),
                "pending_publications": v2.pending,
            },
            "queue_file": queue.path(),
            "queue_length": queued.len(),
            "queued": queued,
            "shared_refs": {
                "remote": remote,
                "refs": shared.iter().map(|r| json!({
                    "ref": r.name, "local": r.local, "remote": r.remote, "pending": r.pending,
                })).collect::<Vec<_>>(),
            },
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON value serializes")
        );
        return Ok(());
    }
    println!("mode: {}", settings.rollout.name());
    match branch {
        Some(c) => println!("legacy branch: {} at {c}", refname::LEGACY_BRANCH),
        None => println!("legacy branch: {} (absent)", refname::LEGACY_BRANCH),
    }
    println!("checkpoint refs: {}", checkpoints.len());
    // The v2 section only when v2 is in use (configured, or its refs or records exist).
    let v2_in_use = settings.rollout.writes(Backend::V2)
        || v2.main.is_some()
        || v2.current.is_some()
        || !v2.archives.is_empty()
        || !v2.pending.is_empty();
    if v2_in_use {
        print_v2(&v2);
    }
    print_shared(remote.as_deref(), &shared);
    println!("push queue: {} ref(s)", queued.len());
    for r in &queued {
        println!("  {r}");
    }
    Ok(())
}

/// The text form of the v2 section.
fn print_v2(v2: &V2State) {
    match &v2.main {
        Some(c) => println!(
            "v2 main: {} at {c} ({} checkpoint(s))",
            layout::MAIN,
            v2.main_checkpoints
        ),
        None => println!("v2 main: {} (absent)", layout::MAIN),
    }
    match &v2.current {
        Some(c) => println!(
            "v2 full/current: at {c} ({} of {} checkpoint(s) before rotation)",
            v2.current_checkpoints,
            layout::max_per_generation()
        ),
        None => println!("v2 full/current: (absent)"),
    }
    println!("v2 archived generations: {}", v2.archives.len());
    for (name, c) in &v2.archives {
        println!("  {name} {c}");
    }
    if !v2.pending.is_empty() {
        println!("v2 pending publications: {}", v2.pending.len());
        for p in &v2.pending {
            println!("  {p}");
        }
    }
}

/// The text form of the shared-ref section (nothing when there are no shared refs).
fn print_shared(remote: Option<&str>, shared: &[SharedRef]) {
    if shared.is_empty() {
        return;
    }
    println!(
        "shared refs on {} (local vs last pushed):",
        remote.unwrap_or("(no named remote)")
    );
    for r in shared {
        let short = |v: &Option<String>| {
            v.as_deref()
                .map_or("-".to_string(), |c| c[..12.min(c.len())].to_string())
        };
        println!(
            "  {} {} vs {} ({})",
            r.name,
            short(&r.local),
            short(&r.remote),
            r.pending
        );
    }
}
