//! `git entire fsck`, v2 part: the invariants of `v2/main` and the `v2/full/*` generations.
//!
//! Checked: every `/main` checkpoint's root and session metadata name it, `sessions[]` matches the slots, compact
//! hashes match; every `/full` generation holds checkpoints that exist on `/main` in the same slots, raw hashes
//! match the reassembled transcripts, no checkpoint is in two generations, archives carry a consistent
//! `generation.json`, are non-empty and hold at most the generation limit, and `/full/current` has no root files.

use std::collections::HashMap;

use entire::git::repo::{ObjectId, Repo};
use entire::model::id::CheckpointId;
use entire::model::metadata::{self, RootMetadata};
use entire::model::transcript;
use entire::store::v2::{layout, read, rotation};

use super::Problem;

/// Check the v2 layout; returns how many checkpoints were checked.
pub fn check(repo: &Repo, problems: &mut Vec<Problem>) -> Result<usize, super::CliError> {
    let mut report = |subject: String, problem: String| problems.push(Problem { subject, problem });
    let main = match repo.find_ref(layout::MAIN)? {
        Some(c) => Some(repo.commit_tree(c)?),
        None => None,
    };
    let mut main_slots: HashMap<CheckpointId, (Vec<usize>, ObjectId)> = HashMap::new();
    if let Some(root) = main {
        let mut odd = Vec::new();
        for (id, tree) in layout::checkpoints(repo, root, |p| odd.push(p))? {
            let subject = format!("{}:{}", layout::MAIN, layout::checkpoint_path(&id));
            let slots: Vec<usize> = layout::slots(repo, tree)?
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            for p in check_main(repo, &id, tree, &slots)? {
                report(subject.clone(), p);
            }
            main_slots.insert(id, (slots, tree));
        }
        for p in odd {
            report(
                format!("{}:{p}", layout::MAIN),
                "not a checkpoint directory".into(),
            );
        }
    }
    let checked = main_slots.len();
    let mut generations: Vec<(String, ObjectId)> = Vec::new();
    if let Some(c) = repo.find_ref(layout::FULL_CURRENT)? {
        generations.push((layout::FULL_CURRENT.to_string(), c));
    }
    generations.extend(layout::archives(repo)?.into_iter().map(|(_, n, c)| (n, c)));
    let limit = layout::max_per_generation();
    let mut home: HashMap<CheckpointId, String> = HashMap::new();
    for (name, commit) in generations {
        let root = repo.commit_tree(commit)?;
        let is_archive = name != layout::FULL_CURRENT;
        let mut odd = Vec::new();
        let cps = layout::checkpoints(repo, root, |p| odd.push(p))?;
        for p in odd {
            report(format!("{name}:{p}"), "not a checkpoint directory".into());
        }
        let has_generation = repo.lookup(root, layout::GENERATION)?.is_some();
        if is_archive {
            if cps.is_empty() {
                report(name.clone(), "archived generation is empty".into());
            }
            if cps.len() > limit {
                report(
                    name.clone(),
                    format!("archive holds {} checkpoints, more than {limit}", cps.len()),
                );
            }
            for p in check_generation(repo, root, &cps, main)? {
                report(name.clone(), p);
            }
        } else if has_generation {
            report(
                name.clone(),
                format!("{} on /full/current", layout::GENERATION),
            );
        }
        for (id, tree) in cps {
            let subject = format!("{name}:{}", layout::checkpoint_path(&id));
            if let Some(other) = home.insert(id.clone(), name.clone()) {
                report(
                    subject.clone(),
                    format!("checkpoint also stored in {other}"),
                );
            }
            let main_entry = main_slots.get(&id).map(|(s, _)| s.as_slice());
            for p in check_full(repo, tree, main_entry)? {
                report(subject.clone(), p);
            }
        }
    }
    Ok(checked)
}

fn blob(repo: &Repo, tree: ObjectId, path: &str) -> Result<Option<Vec<u8>>, super::CliError> {
    Ok(match repo.lookup(tree, path)? {
        Some(e) if !e.is_tree => Some(repo.read_blob(e.id)?),
        _ => None,
    })
}

fn check_main(
    repo: &Repo,
    id: &CheckpointId,
    tree: ObjectId,
    slots: &[usize],
) -> Result<Vec<String>, super::CliError> {
    let mut out = Vec::new();
    match blob(repo, tree, layout::METADATA)? {
        Some(b) => match RootMetadata::parse(&b, layout::METADATA) {
            Ok(root) => {
                if root.checkpoint_id() != Some(id.as_str()) {
                    out.push(format!(
                        "metadata.json names checkpoint {:?}",
                        root.checkpoint_id().unwrap_or("")
                    ));
                }
                let n = root
                    .0
                    .get("sessions")
                    .and_then(|s| s.as_array())
                    .map_or(0, Vec::len);
                if n != slots.len() {
                    out.push(format!(
                        "metadata.json lists {n} session(s), the tree has {} slot(s)",
                        slots.len()
                    ));
                }
            }
            Err(e) => out.push(e.to_string()),
        },
        None => out.push("no metadata.json".into()),
    }
    for (i, n) in slots.iter().enumerate() {
        if i != *n {
            out.push(format!("slot {i} is missing (slots are not contiguous)"));
            break;
        }
    }
    for n in slots {
        match blob(repo, tree, &format!("{n}/{}", layout::METADATA))? {
            Some(b) => match metadata::parse_object(&b, &format!("{n}/metadata.json")) {
                Ok(m) if metadata::str_field(&m, "checkpoint_id") != Some(id.as_str()) => {
                    out.push(format!("{n}/metadata.json does not name checkpoint {id}"))
                }
                Ok(_) => {}
                Err(e) => out.push(e.to_string()),
            },
            None => out.push(format!("{n}/metadata.json is missing")),
        }
        let compact = blob(repo, tree, &format!("{n}/{}", layout::COMPACT))?;
        let hash = blob(repo, tree, &format!("{n}/{}", layout::COMPACT_HASH))?;
        match (compact, hash) {
            (Some(c), Some(h))
                if String::from_utf8_lossy(&h).trim() != transcript::content_hash(&c) =>
            {
                out.push(format!(
                    "{n}/{} does not match {n}/{}",
                    layout::COMPACT_HASH,
                    layout::COMPACT
                ))
            }
            (Some(_), None) => out.push(format!("{n}/{} is missing", layout::COMPACT_HASH)),
            (None, Some(_)) => out.push(format!(
                "{n}/{} without {n}/{}",
                layout::COMPACT_HASH,
                layout::COMPACT
            )),
            _ => {}
        }
    }
    Ok(out)
}

fn check_full(
    repo: &Repo,
    tree: ObjectId,
    main_slots: Option<&[usize]>,
) -> Result<Vec<String>, super::CliError> {
    let mut out = Vec::new();
    let Some(main_slots) = main_slots else {
        return Ok(vec!["checkpoint is not on v2/main".into()]);
    };
    for (n, _) in layout::slots(repo, tree)? {
        if !main_slots.contains(&n) {
            out.push(format!(
                "slot {n} has no session on v2/main (slots are not aligned)"
            ));
        }
        let raw = read::raw_transcript(repo, tree, &n.to_string())
            .map_err(|e| super::CliError::new(super::Exit::Internal, e))?;
        let hash = blob(repo, tree, &format!("{n}/{}", layout::RAW_HASH))?;
        match (raw, hash) {
            (Some(r), Some(h))
                if String::from_utf8_lossy(&h).trim() != transcript::content_hash(&r) =>
            {
                out.push(format!(
                    "{n}/{} does not match {n}/{}",
                    layout::RAW_HASH,
                    layout::RAW
                ))
            }
            (Some(_), None) => out.push(format!("{n}/{} is missing", layout::RAW_HASH)),
            (None, Some(_)) => out.push(format!(
                "{n}/{} without {n}/{}",
                layout::RAW_HASH,
                layout::RAW
            )),
            _ => {}
        }
    }
    Ok(out)
}

/// `generation.json` is present, parses, and brackets the `/main` creation times of its checkpoints.
fn check_generation(
    repo: &Repo,
    root: ObjectId,
    cps: &[(CheckpointId, ObjectId)],
    main: Option<ObjectId>,
) -> Result<Vec<String>, super::CliError> {
    let Some(bytes) = blob(repo, root, layout::GENERATION)? else {
        return Ok(vec![format!("{} is missing", layout::GENERATION)]);
    };
    let m = match metadata::parse_object(&bytes, layout::GENERATION) {
        Ok(m) => m,
        Err(e) => return Ok(vec![e.to_string()]),
    };
    let time = |k: &str| metadata::str_field(&m, k).and_then(rotation::parse_rfc3339);
    let (Some(oldest), Some(newest)) = (time("oldest_checkpoint_at"), time("newest_checkpoint_at"))
    else {
        return Ok(vec![format!(
            "{} lacks valid oldest/newest_checkpoint_at",
            layout::GENERATION
        )]);
    };
    if oldest > newest {
        return Ok(vec![format!(
            "{}: oldest_checkpoint_at is after newest_checkpoint_at",
            layout::GENERATION
        )]);
    }
    let mut out = Vec::new();
    let Some(main) = main else { return Ok(out) };
    for (id, _) in cps {
        let Some(cp) = repo.lookup(main, &layout::checkpoint_path(id))? else {
            continue;
        };
        for (n, slot) in layout::slots(repo, cp.id)? {
            let Some(b) = blob(repo, slot, layout::METADATA)? else {
                continue;
            };
            let Ok(sm) = metadata::parse_object(&b, "metadata.json") else {
                continue;
            };
            if let Some(t) =
                metadata::str_field(&sm, "created_at").and_then(rotation::parse_rfc3339)
            {
                if t < oldest || t > newest {
                    out.push(format!(
                        "{}: checkpoint {id} session {n} created at {} lies outside the generation's time span",
                        layout::GENERATION,
                        rotation::format_time(t)
                    ));
                }
            }
        }
    }
    Ok(out)
}
