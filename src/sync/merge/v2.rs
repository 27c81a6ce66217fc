//! Merging diverged v2 trees (`v2/main`, `v2/full/current`).
//!
//! - `/main` ([`merge_main`]): the union of the two trees by checkpoint directory (`<aa>/<rest>`); a checkpoint
//!   only one side has is taken whole, one both sides wrote differently is merged by session slot
//!   ([`super::checkpoint::merge`]) and its slot plan kept.
//! - `/full` ([`merge_full`]): the same union, with every planned checkpoint's slots placed by `/main`'s plan
//!   ([`super::checkpoint::apply`]) so the raw transcripts stay in the slots their metadata names; a checkpoint
//!   without a plan that differs is united ([`super::checkpoint::union`]).
//!
//! The remote tree is the base of the result: entries only the remote has are never touched.

use std::collections::{BTreeMap, HashMap};

use crate::git::repo::{ObjectId, Repo};
use crate::store::v2::layout;

use super::checkpoint::{self, Layout};
use super::slots::Placed;
use super::MergeError;

/// Slot plans of the checkpoints merged on `/main`, by checkpoint path (`<aa>/<rest>`).
pub type Plans = BTreeMap<String, Vec<Placed>>;

fn by_path(
    repo: &Repo,
    root: ObjectId,
) -> Result<Vec<(String, ObjectId, crate::CheckpointId)>, MergeError> {
    Ok(layout::checkpoints(repo, root, |_| {})?
        .into_iter()
        .map(|(id, tree)| (layout::checkpoint_path(&id), tree, id))
        .collect())
}

/// Merge two `/main` root trees; returns the merged tree and the slot plans of the checkpoints both wrote.
pub fn merge_main(
    repo: &Repo,
    local: ObjectId,
    remote: ObjectId,
) -> Result<(ObjectId, Plans), MergeError> {
    let theirs: HashMap<String, ObjectId> = by_path(repo, remote)?
        .into_iter()
        .map(|(p, t, _)| (p, t))
        .collect();
    let mut plans = Plans::new();
    let mut edits = Vec::new();
    for (path, tree, id) in by_path(repo, local)? {
        match theirs.get(&path) {
            None => edits.push((path, tree)),
            Some(r) if *r == tree => {}
            Some(r) => {
                let (merged, plan) = checkpoint::merge(repo, Layout::V2Main, &id, tree, *r)?;
                plans.insert(path.clone(), plan);
                edits.push((path, merged));
            }
        }
    }
    let tree = put_all(repo, remote, &edits)?;
    Ok((tree, plans))
}

/// Merge two `/full` root trees with `/main`'s `plans`; `remote` is `None` when only `/main` diverged (the
/// local `/full` then only has its planned slots renumbered).
pub fn merge_full(
    repo: &Repo,
    local: ObjectId,
    remote: Option<ObjectId>,
    plans: &Plans,
) -> Result<ObjectId, MergeError> {
    let theirs: HashMap<String, ObjectId> = match remote {
        Some(r) => by_path(repo, r)?
            .into_iter()
            .map(|(p, t, _)| (p, t))
            .collect(),
        None => HashMap::new(),
    };
    let mut edits = Vec::new();
    for (path, tree, _) in by_path(repo, local)? {
        let r = theirs.get(&path).copied().filter(|r| *r != tree);
        let merged = match (plans.get(&path), r) {
            (Some(plan), r) => checkpoint::apply(repo, plan, Some(tree), r)?,
            (None, Some(r)) => checkpoint::union(repo, tree, r)?,
            (None, None) => tree,
        };
        let base = if remote.is_some() {
            theirs.get(&path).copied()
        } else {
            Some(tree)
        };
        if base != Some(merged) {
            edits.push((path, merged));
        }
    }
    put_all(repo, remote.unwrap_or(local), &edits)
}

fn put_all(
    repo: &Repo,
    base: ObjectId,
    edits: &[(String, ObjectId)],
) -> Result<ObjectId, MergeError> {
    if edits.is_empty() {
        return Ok(base);
    }
    Ok(repo.edit_tree(Some(base), |ed| {
        for (path, tree) in edits {
            ed.put_tree(path, *tree)?;
        }
        Ok(())
    })?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::repo::TreeEntry;

    use crate::sync::merge::tests::repo;

    fn blob(repo: &Repo, name: &str, text: &str) -> TreeEntry {
        TreeEntry {
            name: name.into(),
            id: repo.write_blob(text.as_bytes()).expect("blob"),
            is_tree: false,
        }
    }

    fn dir(repo: &Repo, name: &str, entries: &[TreeEntry]) -> TreeEntry {
        TreeEntry {
            name: name.into(),
            id: repo.write_tree(entries).expect("tree"),
            is_tree: true,
        }
    }

    /// A `/main` slot and the matching `/full` slot of session `sid`.
    fn slot(repo: &Repo, n: usize, sid: &str) -> (TreeEntry, TreeEntry) {
        let meta = format!("{{\"session_id\": \"{sid}\", \"checkpoints_count\": 1}}");
        let main = dir(repo, &n.to_string(), &[blob(repo, "metadata.json", &meta)]);
        let full = dir(
            repo,
            &n.to_string(),
            &[blob(repo, "raw_transcript", &format!("raw of {sid}"))],
        );
        (main, full)
    }

    /// `/main` and `/full` roots with checkpoint `ab/cdef012345` holding `sids` and one other checkpoint.
    fn side(repo: &Repo, sids: &[&str], other: &str) -> (ObjectId, ObjectId) {
        let (mains, fulls): (Vec<_>, Vec<_>) = sids
            .iter()
            .enumerate()
            .map(|(n, s)| slot(repo, n, s))
            .unzip();
        let mut mains = mains;
        mains.push(blob(
            repo,
            "metadata.json",
            "{\"checkpoint_id\": \"abcdef012345\"}",
        ));
        let (om, of) = slot(repo, 0, other);
        let root = |cp: Vec<TreeEntry>, o: TreeEntry| {
            let shard = dir(repo, "ab", &[dir(repo, "cdef012345", &cp)]);
            let other = dir(repo, other, &[o]);
            let oshard = dir(
                repo,
                &other.name[..2],
                &[TreeEntry {
                    name: other.name[2..].into(),
                    ..other
                }],
            );
            repo.write_tree(&[shard, oshard]).expect("root")
        };
        (root(mains, om), root(fulls, of))
    }

    fn read(repo: &Repo, root: ObjectId, path: &str) -> Option<String> {
        let e = repo.lookup(root, path).expect("lookup")?;
        Some(String::from_utf8(repo.read_blob(e.id).expect("blob")).expect("utf-8"))
    }

    #[test]
    fn both_sides_keep_every_checkpoint_and_session_with_aligned_slots() {
        let (_d, repo) = repo();
        let (lm, lf) = side(&repo, &["s0", "local"], "aa0000000001");
        let (rm, rf) = side(&repo, &["s0", "remote"], "bb0000000002");
        let (main, plans) = merge_main(&repo, lm, rm).expect("main");
        let full = merge_full(&repo, lf, Some(rf), &plans).expect("full");
        for root in [main, full] {
            for cp in ["aa/0000000001", "bb/0000000002"] {
                assert!(repo.lookup(root, cp).expect("lookup").is_some(), "{cp}");
            }
        }
        let cp = "ab/cdef012345";
        for (n, sid) in [(0, "s0"), (1, "remote"), (2, "local")] {
            let meta = read(&repo, main, &format!("{cp}/{n}/metadata.json")).expect("slot");
            assert!(meta.contains(&format!("\"{sid}\"")), "{n}: {meta}");
            assert_eq!(
                read(&repo, full, &format!("{cp}/{n}/raw_transcript")).as_deref(),
                Some(format!("raw of {sid}").as_str())
            );
        }
        let root = read(&repo, main, &format!("{cp}/metadata.json")).expect("root");
        assert!(root.contains("\"checkpoints_count\": 3"), "{root}");
        assert!(root.contains("/ab/cdef012345/2/metadata.json"), "{root}");
        // Only /main diverged: /full/current gets the same renumbering.
        let renumbered = merge_full(&repo, lf, None, &plans).expect("renumber");
        assert_eq!(
            read(&repo, renumbered, &format!("{cp}/2/raw_transcript")).as_deref(),
            Some("raw of local")
        );
        assert_eq!(
            read(&repo, renumbered, &format!("{cp}/1/raw_transcript")),
            None
        );
        // Identical sides merge to the same tree.
        let (same, none) = merge_main(&repo, lm, lm).expect("same");
        assert_eq!(same, lm);
        assert!(none.is_empty());
    }
}
