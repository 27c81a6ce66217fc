//! Names and paths of the v2 layout (reference `entire-v2-and-attach.md` §2.1), and walking its trees.
//!
//! - `refs/entire/checkpoints/v2/main`: `<id[0:2]>/<id[2:]>/{metadata.json, <n>/{metadata.json, prompt.txt,
//!   transcript.jsonl, transcript_hash.txt}}`.
//! - `refs/entire/checkpoints/v2/full/current` and archives `…/full/<13 digits>`:
//!   `<id[0:2]>/<id[2:]>/<n>/{raw_transcript[.NNN], raw_transcript_hash.txt, tasks/…}`, archives also carry a root
//!   `generation.json`.
//!
//! Pure naming plus read-only tree walks; nothing here writes.

use crate::git::repo::{ObjectId, Repo, RepoError};
use crate::model::id::CheckpointId;
use crate::model::refname;

/// The metadata ref.
pub const MAIN: &str = refname::V2_MAIN;
/// The raw-transcript generation being written.
pub const FULL_CURRENT: &str = refname::V2_FULL_CURRENT;
/// Prefix of `/full/current` and the archived generations.
pub const FULL_PREFIX: &str = "refs/entire/checkpoints/v2/full/";
/// Digits of an archive number.
pub const ARCHIVE_DIGITS: usize = 13;

/// Checkpoints per generation before `/full/current` is rotated (upstream `DefaultMaxCheckpointsPerGeneration`).
pub const MAX_PER_GENERATION: usize = 100;
/// Test-only override of [`MAX_PER_GENERATION`] (a positive integer), so rotation tests stay small and fast.
/// Not a supported setting: upstream has no such knob and other tools rotate at 100.
pub const MAX_PER_GENERATION_ENV: &str = "ENTIRE_TEST_V2_GENERATION_MAX";

pub const METADATA: &str = "metadata.json";
pub const PROMPT: &str = "prompt.txt";
pub const COMPACT: &str = "transcript.jsonl";
pub const COMPACT_HASH: &str = "transcript_hash.txt";
pub const RAW: &str = "raw_transcript";
pub const RAW_HASH: &str = "raw_transcript_hash.txt";
pub const GENERATION: &str = "generation.json";
pub const TASKS: &str = "tasks";

/// Commit message of a ref's first (empty) commit.
pub const INIT_MESSAGE: &str = "Initialize v2 ref\n";
/// Commit message of an archive commit.
pub const ARCHIVE_MESSAGE: &str = "Archive generation\n";
/// Commit message of the orphan that restarts `/full/current`.
pub const START_MESSAGE: &str = "Start generation\n";

/// The generation size in force.
pub fn max_per_generation() -> usize {
    std::env::var(MAX_PER_GENERATION_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(MAX_PER_GENERATION)
}

/// `<id[0:2]>/<id[2:]>`.
pub fn checkpoint_path(id: &CheckpointId) -> String {
    id.v1_path()
}

/// The ref of archive `n`: `refs/entire/checkpoints/v2/full/0000000000001` for 1.
pub fn archive_ref(n: u64) -> String {
    format!("{FULL_PREFIX}{n:0width$}", width = ARCHIVE_DIGITS)
}

/// The number of an archive ref (exactly 13 digits after the prefix), `None` for anything else.
pub fn archive_number(name: &str) -> Option<u64> {
    let suffix = name.strip_prefix(FULL_PREFIX)?;
    (suffix.len() == ARCHIVE_DIGITS && suffix.bytes().all(|b| b.is_ascii_digit()))
        .then(|| suffix.parse().ok())
        .flatten()
}

/// File name of raw-transcript chunk `i`: `raw_transcript`, `raw_transcript.001`, …
pub fn raw_chunk_name(i: usize) -> String {
    if i == 0 {
        RAW.to_string()
    } else {
        format!("{RAW}.{i:03}")
    }
}

/// Index of a raw-transcript chunk name, `None` for other names.
pub fn raw_chunk_index(name: &str) -> Option<usize> {
    if name == RAW {
        return Some(0);
    }
    let suffix = name.strip_prefix(RAW)?.strip_prefix('.')?;
    (suffix.len() >= 3 && suffix.bytes().all(|b| b.is_ascii_digit()))
        .then(|| suffix.parse().ok())
        .flatten()
        .filter(|&i| i > 0)
}

/// Archived generations present locally, oldest (lowest number) first.
pub fn archives(repo: &Repo) -> Result<Vec<(u64, String, ObjectId)>, RepoError> {
    let mut out: Vec<(u64, String, ObjectId)> = repo
        .refs_with_prefix(FULL_PREFIX)?
        .into_iter()
        .filter_map(|(name, commit)| archive_number(&name).map(|n| (n, name, commit)))
        .collect();
    out.sort();
    Ok(out)
}

/// Checkpoint directories of a v2 tree: `(id, subtree)` for every `<2 chars>/<rest>` pair forming a valid ID.
/// Entries that do not form an ID are reported through `odd` (path) and skipped.
pub fn checkpoints(
    repo: &Repo,
    root: ObjectId,
    mut odd: impl FnMut(String),
) -> Result<Vec<(CheckpointId, ObjectId)>, RepoError> {
    let mut out = Vec::new();
    for shard in repo.tree_entries(root)? {
        if !shard.is_tree {
            if shard.name != GENERATION {
                odd(shard.name);
            }
            continue;
        }
        if shard.name.len() != 2 {
            odd(shard.name);
            continue;
        }
        for cp in repo.tree_entries(shard.id)? {
            match CheckpointId::parse(&format!("{}{}", shard.name, cp.name)) {
                Ok(id) if cp.is_tree => out.push((id, cp.id)),
                _ => odd(format!("{}/{}", shard.name, cp.name)),
            }
        }
    }
    Ok(out)
}

/// How many checkpoints a v2 tree holds: second-level directories under two-character shard directories.
pub fn count_checkpoints(repo: &Repo, root: ObjectId) -> Result<usize, RepoError> {
    let mut n = 0;
    for shard in repo.tree_entries(root)? {
        if shard.is_tree && shard.name.len() == 2 {
            n += repo
                .tree_entries(shard.id)?
                .iter()
                .filter(|e| e.is_tree)
                .count();
        }
    }
    Ok(n)
}

/// Session slot directories (`0`, `1`, …) of a checkpoint subtree: `(n, subtree)`, sorted by `n`.
pub fn slots(repo: &Repo, checkpoint: ObjectId) -> Result<Vec<(usize, ObjectId)>, RepoError> {
    let mut out: Vec<(usize, ObjectId)> = repo
        .tree_entries(checkpoint)?
        .into_iter()
        .filter(|e| e.is_tree)
        .filter_map(|e| {
            let n: usize = e.name.parse().ok()?;
            (n.to_string() == e.name).then_some((n, e.id))
        })
        .collect();
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_table() {
        assert_eq!(
            archive_ref(1),
            "refs/entire/checkpoints/v2/full/0000000000001"
        );
        assert_eq!(archive_number(&archive_ref(42)), Some(42));
        for bad in [
            "refs/entire/checkpoints/v2/full/current",
            "refs/entire/checkpoints/v2/full/000000000001",
            "refs/entire/checkpoints/v2/full/00000000000001",
            "refs/entire/checkpoints/v2/full/000000000000a",
            "refs/entire/checkpoints/v2/main",
        ] {
            assert_eq!(archive_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn chunk_names_table() {
        for (i, name) in [
            (0, "raw_transcript"),
            (1, "raw_transcript.001"),
            (1000, "raw_transcript.1000"),
        ] {
            assert_eq!(raw_chunk_name(i), name);
            assert_eq!(raw_chunk_index(name), Some(i));
        }
        for bad in [
            "raw_transcript.",
            "raw_transcript.1",
            "raw_transcript.000",
            "raw_transcript_hash.txt",
        ] {
            assert_eq!(raw_chunk_index(bad), None, "{bad}");
        }
    }
}
