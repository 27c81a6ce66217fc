//! The 40 real checkpoints of the sample bundle, read through both stores and rewritten byte-exact.

use std::path::{Path, PathBuf};

use crate::env::{sample_bundle, TestEnv};
use crate::fixtures::{path_str, set_mode};

const SAMPLE_BRANCH: &str = "refs/heads/entire/checkpoints/v1";

/// Materialise a checkpoint slot of the sample branch as a session directory.
fn export_slot(env: &TestEnv, repo: &Path, cp_path: &str, slot: &str, out: &Path) -> bool {
    std::fs::create_dir_all(out).expect("mkdir");
    let files = env.git(
        repo,
        &[
            "ls-tree",
            "--name-only",
            &format!("{SAMPLE_BRANCH}:{cp_path}/{slot}"),
        ],
    );
    if !files.lines().any(|f| f == "full.jsonl") {
        return false;
    }
    for f in files.lines() {
        let blob = env
            .run(
                repo,
                "git",
                [
                    "cat-file",
                    "blob",
                    &format!("{SAMPLE_BRANCH}:{cp_path}/{slot}/{f}"),
                ],
            )
            .ok();
        std::fs::write(out.join(f), blob.stdout_bytes).expect("write exported file");
    }
    true
}

#[test]
fn sample_bundle_reads_and_rewrites_byte_exact() {
    let env = TestEnv::new();
    let src = env.path().join("sample");
    env.git(env.path(), &["init", "-q", "-b", "main", path_str(&src)]);
    env.git(
        &src,
        &[
            "fetch",
            "-q",
            path_str(&sample_bundle()),
            &format!("+{SAMPLE_BRANCH}:{SAMPLE_BRANCH}"),
        ],
    );
    let paths = env.git(&src, &["ls-tree", "-r", "-d", "--name-only", SAMPLE_BRANCH]);
    let checkpoints: Vec<&str> = paths.lines().filter(|p| p.len() == 13).collect();
    assert_eq!(checkpoints.len(), 40, "the fixture holds 40 checkpoints");

    let copy = env.repo("copy");
    set_mode(&copy, Some("refs-v1"));
    let mut rewritten = 0;
    let mut exact_slots = 0;
    for cp in &checkpoints {
        let id = cp.replace('/', "");
        // 1. Through the branch store, every file byte for byte.
        let files = env.git(
            &src,
            &[
                "ls-tree",
                "-r",
                "--name-only",
                &format!("{SAMPLE_BRANCH}:{cp}"),
            ],
        );
        for f in files.lines() {
            let want = env
                .run(
                    &src,
                    "git",
                    ["cat-file", "blob", &format!("{SAMPLE_BRANCH}:{cp}/{f}")],
                )
                .ok();
            let got = env.entire(&src, &["show", &id, f]).ok();
            assert!(
                got.stdout_bytes == want.stdout_bytes,
                "{id}:{f} differs through the branch store"
            );
        }
        // 2. Through a refs copy: an orphan commit of the subtree under its checkpoint ref.
        let tree = env.git(&src, &["rev-parse", &format!("{SAMPLE_BRANCH}:{cp}")]);
        let commit = env.git(
            &src,
            &["commit-tree", &tree, "-m", &format!("Checkpoint: {id}")],
        );
        let ref_name = format!("refs/entire/checkpoints/{}/{id}", &id[10..]);
        env.git(&src, &["update-ref", &ref_name, &commit]);
        env.git(
            &src,
            &[
                "push",
                "-q",
                path_str(&copy),
                &format!("{ref_name}:{ref_name}"),
            ],
        );
        let want = env
            .run(
                &src,
                "git",
                [
                    "cat-file",
                    "blob",
                    &format!("{SAMPLE_BRANCH}:{cp}/metadata.json"),
                ],
            )
            .ok();
        assert_eq!(
            env.entire(&copy, &["show", &id]).ok().stdout,
            want.stdout,
            "{id} via refs"
        );
        // 3. Rewriting each session through the branch store reproduces the original slot trees exactly.
        let fresh = env.repo(&format!("fresh-{id}"));
        let slots: Vec<String> = env
            .git(
                &src,
                &[
                    "ls-tree",
                    "-d",
                    "--name-only",
                    &format!("{SAMPLE_BRANCH}:{cp}"),
                ],
            )
            .lines()
            .filter(|n| n.parse::<u32>().is_ok())
            .map(str::to_string)
            .collect();
        let mut sorted = slots.clone();
        sorted.sort_by_key(|n| n.parse::<u32>().expect("numeric slot"));
        let exported: Vec<PathBuf> = sorted
            .iter()
            .map(|slot| env.path().join(format!("x/{id}/{slot}")))
            .collect();
        let contiguous = sorted
            .iter()
            .enumerate()
            .all(|(i, slot)| *slot == i.to_string());
        if !contiguous
            || !sorted
                .iter()
                .zip(&exported)
                .all(|(slot, out)| export_slot(&env, &src, cp, slot, out))
        {
            continue; // gaps between slots, or slots without a transcript, cannot be produced by `write`
        }
        for dir in &exported {
            env.entire(&fresh, &["write", "--id", &id, path_str(dir)])
                .ok();
        }
        for slot in &sorted {
            let listing =
                |repo: &Path| env.git(repo, &["ls-tree", &format!("{SAMPLE_BRANCH}:{cp}/{slot}")]);
            let (want, got) = (listing(&src), listing(&fresh));
            // Some historical hashes were taken before redaction and cannot be reproduced from the stored
            // transcript; compare those slots without content_hash.txt, all others byte for byte.
            // (Very old slots have no content_hash.txt at all.)
            let stored_hash =
                std::fs::read_to_string(env.path().join(format!("x/{id}/{slot}/content_hash.txt")))
                    .unwrap_or_default();
            let ours = env
                .entire(&fresh, &["show", &id, &format!("{slot}/content_hash.txt")])
                .ok()
                .stdout;
            let skip_hash = stored_hash != ours;
            let keep = |l: &&str| !(skip_hash && l.ends_with("content_hash.txt"));
            let want: Vec<&str> = want.lines().filter(keep).collect();
            let got: Vec<&str> = got.lines().filter(keep).collect();
            assert_eq!(
                got, want,
                "{id} slot {slot} is byte-identical after a rewrite"
            );
            exact_slots += usize::from(!skip_hash);
        }
        let want: serde_json::Value = serde_json::from_slice(&want.stdout_bytes).expect("json");
        let got: serde_json::Value =
            serde_json::from_str(&env.entire(&fresh, &["show", &id]).ok().stdout).expect("json");
        // (files_touched/checkpoints_count are re-aggregated from the sessions; old writers differed.)
        for key in ["checkpoint_id", "strategy"] {
            assert_eq!(got[key], want[key], "{id}: root {key}");
        }
        // Paths are absolute from the branch root. (Older writers listed context/prompt paths for files they
        // did not write, and one checkpoint of the sample has a doubled prefix; ours are the canonical form.)
        for (i, slot) in sorted.iter().enumerate() {
            for (key, file) in [("metadata", "metadata.json"), ("transcript", "full.jsonl")] {
                assert_eq!(
                    got["sessions"][i][key],
                    format!("/{cp}/{slot}/{file}"),
                    "{id}: sessions[{i}].{key}"
                );
            }
        }
        rewritten += 1;
    }
    assert!(
        rewritten >= 30,
        "most sample checkpoints were rewritten byte-exact ({rewritten})"
    );
    assert!(
        exact_slots >= 20,
        "whole slot trees identical, hash included ({exact_slots})"
    );
}
