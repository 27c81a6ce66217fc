//! Generation rotation of `v2/full/current` (seed 001), with the generation limit lowered through the test-only
//! `ENTIRE_TEST_V2_GENERATION_MAX` so the tests stay small: archives, `generation.json`, pending publications,
//! updates of archived checkpoints where they live, and 8 concurrent writers crossing several thresholds.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::env::TestEnv;
use crate::fixtures::{hex_id, path_str};
use crate::v2_write::{claude_session, claude_transcript, settings, CURRENT, MAIN};

const LIMIT: usize = 3;

fn archive(n: u32) -> String {
    format!("refs/entire/checkpoints/v2/full/{n:013}")
}

/// Checkpoint IDs held by each generation (`current` and archives), by ref name.
fn generations(env: &TestEnv, repo: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let refs = env.git(
        repo,
        &[
            "for-each-ref",
            "--format=%(refname)",
            "refs/entire/checkpoints/v2/full/",
        ],
    );
    for r in refs.lines() {
        let ids: Vec<String> = env
            .git(repo, &["ls-tree", "-d", "-r", "--name-only", r])
            .lines()
            .filter(|p| p.matches('/').count() == 1)
            .map(|p| p.replace('/', ""))
            .collect();
        out.insert(r.to_string(), ids);
    }
    out
}

fn setup(env: &TestEnv) -> std::path::PathBuf {
    let repo = env.repo("r");
    settings(&repo, r#"{"strategy_options": {"checkpoints_version": 2}}"#);
    env.set_env("ENTIRE_TEST_V2_GENERATION_MAX", &LIMIT.to_string());
    repo
}

#[test]
fn rotation_archives_full_generations_and_updates_archived_checkpoints_in_place() {
    let env = TestEnv::new();
    let repo = setup(&env);
    let s = claude_session(&env, "s", "sess", &claude_transcript("s", 1));
    let ids: Vec<String> = (0..7).map(hex_id).collect();
    for id in &ids {
        env.entire(&repo, &["write", "--id", id, path_str(&s)]).ok();
    }
    let gens = generations(&env, &repo);
    assert_eq!(gens[&archive(1)], ids[0..3], "{gens:?}");
    assert_eq!(gens[&archive(2)], ids[3..6], "{gens:?}");
    assert_eq!(gens[CURRENT], ids[6..7], "{gens:?}");
    let a1 = archive(1);
    assert_eq!(
        env.git(&repo, &["log", "-1", "--format=%s", &a1]),
        "Archive generation"
    );
    let parent = env.git(&repo, &["rev-parse", &format!("{a1}^")]);
    assert_eq!(
        env.git(&repo, &["log", "-1", "--format=%s", &parent]),
        format!("Checkpoint: {}", ids[2])
    );
    let gen: Value = serde_json::from_str(
        &env.git(&repo, &["cat-file", "-p", &format!("{a1}:generation.json")]),
    )
    .expect("generation.json");
    assert!(
        gen["oldest_checkpoint_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{gen}"
    );
    assert!(
        gen["oldest_checkpoint_at"].as_str() < gen["newest_checkpoint_at"].as_str(),
        "{gen}"
    );
    let root = env.git(&repo, &["rev-list", "--max-parents=0", CURRENT]);
    assert_eq!(
        env.git(&repo, &["log", "-1", "--format=%s", &root]),
        "Start generation"
    );
    assert_eq!(
        env.git(&repo, &["ls-tree", "--name-only", &root]),
        "",
        "the orphan is empty"
    );

    let common = env.git(
        &repo,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    );
    let pending: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(&common).join("entire-v2-rotations/pending.json"))
            .expect("pending"),
    )
    .expect("json");
    assert_eq!(pending["version"], 1);
    let recs = pending["publications"].as_array().expect("array");
    assert_eq!(recs.len(), 2, "{pending}");
    assert_eq!(recs[0]["archive_ref_name"], a1.as_str());
    assert_eq!(
        recs[0]["archive_commit_hash"],
        env.git(&repo, &["rev-parse", &a1]).as_str()
    );
    assert_eq!(recs[0]["previous_full_current_hash"], parent.as_str());

    // Reads find archived raw transcripts; rewrites and new sessions of an archived checkpoint stay in its
    // generation.
    let shown = env
        .entire(&repo, &["show", "--no-fetch", &ids[0], "0/raw_transcript"])
        .ok();
    assert_eq!(shown.stdout, claude_transcript("s", 1));
    let current_before = env.git(&repo, &["rev-parse", CURRENT]);
    let grown = claude_session(&env, "grown", "sess", &claude_transcript("grown", 2));
    env.entire(&repo, &["write", "--id", &ids[1], path_str(&grown)])
        .ok();
    let other = claude_session(&env, "other", "sess-2", &claude_transcript("other", 1));
    env.entire(&repo, &["write", "--id", &ids[1], path_str(&other)])
        .ok();
    assert_eq!(
        env.git(&repo, &["rev-parse", CURRENT]),
        current_before,
        "current untouched"
    );
    let cp = format!("{}/{}", &ids[1][..2], &ids[1][2..]);
    let raw = env.git(
        &repo,
        &["cat-file", "-p", &format!("{a1}:{cp}/0/raw_transcript")],
    );
    assert!(raw.contains("grown"), "{raw}");
    env.git(
        &repo,
        &["cat-file", "-e", &format!("{a1}:{cp}/1/raw_transcript")],
    );
    assert_eq!(generations(&env, &repo)[&a1].len(), LIMIT);

    let status: Value =
        serde_json::from_str(&env.entire(&repo, &["status", "--json"]).ok().stdout).expect("json");
    assert_eq!(status["v2"]["archives"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        status["v2"]["pending_publications"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    env.entire(&repo, &["fsck"]).ok();
}

#[test]
fn eight_concurrent_writers_crossing_thresholds_lose_nothing_and_never_duplicate() {
    let env = TestEnv::new();
    let repo = setup(&env);
    let s = claude_session(&env, "s", "sess", &claude_transcript("s", 1));
    let writers = 8u32;
    let per_writer = 5u32;
    std::thread::scope(|scope| {
        for w in 0..writers {
            let (env, repo, s) = (&env, &repo, &s);
            scope.spawn(move || {
                for i in 0..per_writer {
                    let id = hex_id(100 + w * per_writer + i);
                    env.entire(repo, &["write", "--id", &id, path_str(s)]).ok();
                }
            });
        }
    });
    let total = (writers * per_writer) as usize;
    let gens = generations(&env, &repo);
    let mut seen = BTreeMap::new();
    for (r, ids) in &gens {
        if r != CURRENT {
            assert_eq!(ids.len(), LIMIT, "{r} holds exactly the limit: {gens:?}");
            env.git(&repo, &["cat-file", "-e", &format!("{r}:generation.json")]);
        }
        for id in ids {
            if let Some(other) = seen.insert(id.clone(), r.clone()) {
                panic!("{id} is in {other} and {r}");
            }
        }
    }
    assert_eq!(
        seen.len(),
        total,
        "every checkpoint is in one generation: {gens:?}"
    );
    assert_eq!(gens.len() - 1, total / LIMIT, "{gens:?}");
    let main = env.git(&repo, &["ls-tree", "-d", "-r", "--name-only", MAIN]);
    assert_eq!(
        main.lines().filter(|p| p.matches('/').count() == 1).count(),
        total
    );
    let status: Value =
        serde_json::from_str(&env.entire(&repo, &["status", "--json"]).ok().stdout).expect("json");
    assert_eq!(
        status["v2"]["pending_publications"]
            .as_array()
            .map(Vec::len),
        Some(total / LIMIT),
        "one pending publication per archive"
    );
    env.entire(&repo, &["fsck"]).ok();
}
