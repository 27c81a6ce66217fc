//! `git entire status`: rollout mode, store heads, push queue.

use serde_json::json;

use super::{open_repo, CliError, Global};
use entire::model::refname;
use entire::store;
use entire::store::queue::Queue;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

pub fn run(_g: &Global, a: Args) -> Result<(), CliError> {
    let (repo, settings) = open_repo()?;
    let branch = store::branch::tip(&repo)?;
    let checkpoints = store::local_checkpoints(&repo)?;
    let queue = Queue::new(&repo.common_dir());
    let queued = queue.peek()?;
    if a.json {
        let doc = json!({
            "mode": settings.rollout.name(),
            "primary": settings.rollout.primary,
            "mirror": settings.rollout.mirror,
            "legacy_branch": branch.map(|c| c.to_string()),
            "checkpoint_refs": checkpoints.len(),
            "queue_file": queue.path(),
            "queue_length": queued.len(),
            "queued": queued,
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
    println!("push queue: {} ref(s)", queued.len());
    for r in &queued {
        println!("  {r}");
    }
    Ok(())
}
