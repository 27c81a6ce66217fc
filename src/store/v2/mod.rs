//! The v2 layout (SPEC §3.4; reference `entire-v2-and-attach.md` §2): `refs/entire/checkpoints/v2/main` holds
//! every checkpoint's metadata, prompts and compact transcripts; `refs/entire/checkpoints/v2/full/current` and
//! its archived generations `…/full/<13 digits>` hold the raw transcripts and task trees.
//!
//! One module per concept: [`layout`] (names, paths, tree walks), [`session`] (the v2 session metadata and
//! compact transcript), [`main`] (write to `/main`), [`full`] (write to `/full`), [`rotation`] (generation
//! rotation), [`pending`] (pending publications of rotations), [`mod@read`] (reads).
//!
//! A write ([`write()`]):
//! 1. queues `v2/main` and `v2/full/current` for push (before any ref moves, so a crash never leaves a written
//!    ref unqueued);
//! 2. writes `/main`, which chooses the slots (slot-0 guard included);
//! 3. writes `/full` into the same slots, where the checkpoint lives (an archive holding it is queued first);
//! 4. rotates `/full/current` when it holds the generation limit; a failed or lost rotation is a warning.
//!
//! There is no rollback across refs (as upstream): if step 3 fails, step 2's commit stays and the error says
//! so; rewriting the same session repairs it. Every ref update is compare-and-swap, retried from the new tip.

pub mod full;
pub mod layout;
pub mod main;
pub mod pending;
pub mod read;
pub mod rotation;
pub mod session;

use std::path::PathBuf;

use crate::git::repo::{Identity, ObjectId, Repo};
use crate::model::checkpoint::SessionInput;
use crate::model::id::CheckpointId;
use crate::store::queue::Queue;
use crate::store::StoreError;

pub use read::{list, locate, read};

/// Errors specific to the v2 layout.
#[derive(Debug, thiserror::Error)]
pub enum V2Error {
    #[error(
        "refusing to overwrite session {slot} of checkpoint {id}: existing session ID {existing:?} differs from \
         write session ID {incoming:?}. The v2 checkpoint tree is inconsistent (session {slot} belongs to a \
         different session than this write claims); inspect it with \
         `git ls-tree -r refs/entire/checkpoints/v2/main {path}/`"
    )]
    SlotTaken {
        id: String,
        slot: usize,
        existing: String,
        incoming: String,
        path: String,
    },
    #[error("{path}: {source}")]
    Pending {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: malformed pending publications: {problem}")]
    PendingFormat { path: PathBuf, problem: String },
    #[error(
        "checkpoint {id}: v2 /main was written ({main}) but the raw transcripts could not be written to v2 /full: \
         {source}"
    )]
    FullFailed {
        id: String,
        main: ObjectId,
        #[source]
        source: Box<StoreError>,
    },
}

/// Outcome of a v2 write.
#[derive(Debug, Clone)]
pub struct Written {
    /// `/main` after the write.
    pub main: ObjectId,
    /// False when `/main` did not change.
    pub main_changed: bool,
    /// The `/full` ref written (`current` or an archive), when raw transcripts changed.
    pub full: Option<full::FullWritten>,
    /// Slot of each session (input order).
    pub slots: Vec<usize>,
    /// The archive created by a rotation after this write.
    pub rotated: Option<String>,
    /// Problems that did not fail the write (rotation).
    pub warnings: Vec<String>,
}

fn enqueue(repo: &Repo, id: &CheckpointId, refs: &[&str]) -> Result<(), StoreError> {
    Queue::new(&repo.common_dir())
        .enqueue(refs)
        .map_err(|source| StoreError::Enqueue {
            id: id.to_string(),
            ref_name: refs.join(", "),
            source,
        })
}

/// Write `sessions` into checkpoint `id` in the v2 layout.
pub fn write(
    repo: &Repo,
    id: &CheckpointId,
    sessions: &[SessionInput],
    who: &Identity,
) -> Result<Written, StoreError> {
    enqueue(repo, id, &[layout::MAIN, layout::FULL_CURRENT])?;
    let m = main::write(repo, id, sessions, who)?;
    if m.existed {
        // The checkpoint may live in an archive: queue it before it can change.
        if let Some(f) = full::locate(repo, id)? {
            if f.ref_name != layout::FULL_CURRENT {
                enqueue(repo, id, &[f.ref_name.as_str()])?;
            }
        }
    }
    let full = full::write(repo, id, sessions, &m.slots, m.existed, who).map_err(|e| {
        V2Error::FullFailed {
            id: id.to_string(),
            main: m.commit,
            source: Box::new(e),
        }
    })?;
    let mut written = Written {
        main: m.commit,
        main_changed: m.changed,
        full,
        slots: m.slots,
        rotated: None,
        warnings: Vec::new(),
    };
    // Only a write that added a checkpoint to /full/current can fill it; the rotation recounts on a fresh read.
    let max = layout::max_per_generation();
    let filled = written
        .full
        .as_ref()
        .is_some_and(|f| f.ref_name == layout::FULL_CURRENT && f.count.is_some_and(|n| n >= max));
    if filled {
        match rotation::rotate_if_needed(repo, max, who) {
            Ok(rotation::Rotation::Rotated { archive, .. }) => written.rotated = Some(archive),
            Ok(rotation::Rotation::NotNeeded) => {}
            Ok(rotation::Rotation::Lost { reason }) => {
                tracing::debug!(checkpoint = %id, "v2 rotation skipped: {reason}");
            }
            Err(e) => written.warnings.push(format!(
                "v2 generation rotation failed (the checkpoint is written; the next write retries): {e}"
            )),
        }
    }
    Ok(written)
}
