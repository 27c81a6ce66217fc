//! Generation rotation of `/full/current` (seed 001; reference §2.8).
//!
//! Steps, after a `/full/current` write:
//! 1. re-read `/full/current` and count its checkpoints; below the limit nothing happens;
//! 2. the next number is max(archives)+1 (first `0000000000001`); an existing archive of that name is never
//!    overwritten;
//! 3. archive commit = current tree + `generation.json` (`oldest_checkpoint_at`/`newest_checkpoint_at`), parent =
//!    the current tip, message `Archive generation`; an orphan empty commit `Start generation` restarts current;
//! 4. a pending publication is recorded **before** any ref moves;
//! 5. ONE compare-and-swap transaction creates the archive ref (must not exist) and moves `/full/current` from
//!    the counted tip to the orphan. If `current` moved or the archive name was taken meanwhile, neither ref
//!    changes and the record is removed again.
//!
//! Guarantees under concurrency: a checkpoint is in exactly one generation (the archive holds exactly the tree
//! that leaves `current`, atomically); an archive never holds fewer than the limit nor is empty (the count is of
//! the very tree archived). A failed rotation is reported to the caller, who treats it as a warning: the write
//! stands and the next write retries.

use serde_json::{Map, Value};

use crate::git::repo::{Identity, ObjectId, RefUpdate, Repo, RepoError};
use crate::model::checkpoint::rfc3339;
use crate::model::metadata;
use crate::store::StoreError;

use super::layout::{self, FULL_CURRENT, GENERATION, MAIN, METADATA};
use super::pending::{Pending, Publication};

/// UTC seconds and nanoseconds.
pub type Instant = (i64, u32);

/// What a rotation attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// Fewer checkpoints than the limit.
    NotNeeded,
    /// `/full/current` was archived under this ref.
    Rotated { archive: String, checkpoints: usize },
    /// Another writer got there first (current moved, or the archive name exists); nothing changed.
    Lost { reason: String },
}

/// Rotate `/full/current` if it holds at least `max` checkpoints.
pub fn rotate_if_needed(repo: &Repo, max: usize, who: &Identity) -> Result<Rotation, StoreError> {
    let Some(tip) = repo.find_ref(FULL_CURRENT)? else {
        return Ok(Rotation::NotNeeded);
    };
    let tree = repo.commit_tree(tip)?;
    let count = layout::count_checkpoints(repo, tree)?;
    if count < max {
        return Ok(Rotation::NotNeeded);
    }
    let next = layout::archives(repo)?.last().map_or(1, |(n, _, _)| n + 1);
    let archive = layout::archive_ref(next);
    if repo.find_ref(&archive)?.is_some() {
        return Ok(Rotation::Lost {
            reason: format!("{archive} already exists"),
        });
    }
    let generation = generation_json(repo, tip, tree)?;
    let blob = repo.write_blob(&metadata::to_go_json(&generation))?;
    let archive_tree = repo.edit_tree(Some(tree), |ed| ed.put_blob(GENERATION, blob))?;
    let archive_commit =
        repo.write_commit(archive_tree, &[tip], who, who, layout::ARCHIVE_MESSAGE)?;
    let empty = repo.write_tree(&[])?;
    let orphan = repo.write_commit(empty, &[], who, who, layout::START_MESSAGE)?;
    if repo.find_ref(FULL_CURRENT)? != Some(tip) {
        return Ok(Rotation::Lost {
            reason: format!("{FULL_CURRENT} moved during the rotation"),
        });
    }
    let record = Publication {
        archive_ref_name: archive.clone(),
        archive_commit_hash: archive_commit.to_string(),
        previous_full_current_hash: tip.to_string(),
        reset_full_current_root_hash: orphan.to_string(),
        queued_at: rfc3339(who.seconds),
    };
    let pending = Pending::new(&repo.common_dir());
    pending.append(&record)?;
    let updates = [
        RefUpdate {
            name: archive.clone(),
            expected: None,
            new: Some(archive_commit),
        },
        RefUpdate {
            name: FULL_CURRENT.to_string(),
            expected: Some(tip),
            new: Some(orphan),
        },
    ];
    match repo.transaction(
        &updates,
        &format!("entire: rotate v2 generation into {archive}"),
    ) {
        Ok(()) => Ok(Rotation::Rotated {
            archive,
            checkpoints: count,
        }),
        Err(e) => {
            pending.remove(&record)?;
            match e {
                RepoError::Conflict { name, .. } => Ok(Rotation::Lost {
                    reason: format!("{name} changed during the rotation"),
                }),
                e => Err(e.into()),
            }
        }
    }
}

/// `generation.json` for the generation in `tree` (tip `tip`): the oldest and newest checkpoint times, from the
/// sessions' `created_at` on `/main`, else the raw transcripts' `timestamp` fields, else the history of
/// `/full/current` (root commit → tip committer times).
pub fn generation_json(repo: &Repo, tip: ObjectId, tree: ObjectId) -> Result<Value, StoreError> {
    let main_root = match repo.find_ref(MAIN)? {
        Some(c) => Some(repo.commit_tree(c)?),
        None => None,
    };
    let mut times: Vec<(i64, u32)> = Vec::new();
    let mut complete = true;
    for (id, cp_tree) in layout::checkpoints(repo, tree, |_| {})? {
        let mut found = Vec::new();
        let cp_main = match main_root {
            Some(r) => repo
                .lookup(r, &layout::checkpoint_path(&id))?
                .filter(|e| e.is_tree),
            None => None,
        };
        if let Some(cp_main) = cp_main {
            for (n, slot) in layout::slots(repo, cp_main.id)? {
                let Some(e) = repo.lookup(slot, METADATA)? else {
                    continue;
                };
                let Ok(m) =
                    metadata::parse_object(&repo.read_blob(e.id)?, &format!("{n}/{METADATA}"))
                else {
                    continue;
                };
                found.extend(metadata::str_field(&m, "created_at").and_then(parse_rfc3339));
            }
        }
        if found.is_empty() {
            found = transcript_times(repo, cp_tree)?;
        }
        complete &= !found.is_empty();
        times.extend(found);
    }
    let (oldest, newest) = match (times.iter().min(), times.iter().max()) {
        (Some(o), Some(n)) if complete => (*o, *n),
        _ => history_times(repo, tip)?,
    };
    let mut m = Map::new();
    m.insert("oldest_checkpoint_at".into(), format_time(oldest).into());
    m.insert("newest_checkpoint_at".into(), format_time(newest).into());
    Ok(Value::Object(m))
}

/// `timestamp` fields of every line of every raw transcript under a checkpoint subtree.
fn transcript_times(repo: &Repo, cp_tree: ObjectId) -> Result<Vec<(i64, u32)>, StoreError> {
    let mut out = Vec::new();
    for (_, slot) in layout::slots(repo, cp_tree)? {
        for e in repo.tree_entries(slot)? {
            if layout::raw_chunk_index(&e.name).is_none() {
                continue;
            }
            for line in repo.read_blob(e.id)?.split(|&b| b == b'\n') {
                let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(line) else {
                    continue;
                };
                out.extend(metadata::str_field(&m, "timestamp").and_then(parse_rfc3339));
            }
        }
    }
    Ok(out)
}

/// Committer times of the root (first parents) and of `tip`.
fn history_times(repo: &Repo, tip: ObjectId) -> Result<(Instant, Instant), StoreError> {
    let time = |c: ObjectId| -> Result<i64, StoreError> {
        let commit = repo
            .gix()
            .find_commit(c)
            .map_err(|_| RepoError::BadObject {
                what: "reading commit time".into(),
                id: c,
                kind: "commit",
            })?;
        Ok(commit.time().map(|t| t.seconds).unwrap_or(0))
    };
    let newest = time(tip)?;
    let mut root = tip;
    while let Some(p) = repo.commit_parents(root)?.first() {
        root = *p;
    }
    Ok(((time(root)?, 0), (newest, 0)))
}

/// Parse an RFC 3339 time (`2026-01-02T03:04:05.123Z`, `…+02:00`) into UTC seconds and nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[13] != b':' || b[16] != b':' || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = frac[..digits].parse::<u32>().ok()? * 10u32.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && matches!(&rest[3..4], ":") => {
            let sign = match &rest[..1] {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset, nanos))
}

/// Go's `time.Time` JSON form in UTC: RFC 3339 with nanoseconds, trailing zeros dropped.
pub fn format_time((secs, nanos): (i64, u32)) -> String {
    let base = rfc3339(secs);
    if nanos == 0 {
        return base;
    }
    let frac = format!("{nanos:09}");
    format!(
        "{}.{}Z",
        &base[..base.len() - 1],
        frac.trim_end_matches('0')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_table() {
        for (input, want) in [
            ("2026-01-01T00:00:00Z", Some("2026-01-01T00:00:00Z")),
            (
                "2026-02-12T15:40:34.120000Z",
                Some("2026-02-12T15:40:34.12Z"),
            ),
            (
                "2026-02-12T17:40:34.000000001+02:00",
                Some("2026-02-12T15:40:34.000000001Z"),
            ),
            ("2000-02-29T23:59:59-00:30", Some("2000-03-01T00:29:59Z")),
            ("2026-13-01T00:00:00Z", None),
            ("2026-01-01 00:00:00Z", None),
            ("2026-01-01T00:00:00", None),
            ("2026-01-01T00:00:00.Z", None),
            ("", None),
        ] {
            assert_eq!(
                parse_rfc3339(input).map(format_time).as_deref(),
                want,
                "{input}"
            );
        }
    }
}
