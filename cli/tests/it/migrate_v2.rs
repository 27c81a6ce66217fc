//! `git entire-migrate --to v2` on the 40-checkpoint sample: content equality with the legacy branch
//! (raw transcript blobs reused byte for byte), archives of exactly the generation size, and the rerun
//! semantics of seed 000: a rerun skips everything and writes nothing, an interrupted run (a `/main` that
//! landed without its `/full`) is resumed to the uninterrupted result, new legacy checkpoints are the only
//! ones migrated, kill -9 at several points then a rerun converges to the same refs, `--force` prunes every
//! generation and migrates fresh without duplicating a checkpoint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::env::TestEnv;
use crate::migrate::{legacy_checkpoints, migrate, sample_repo, LEGACY};

pub const V2: &str = "refs/entire/checkpoints/v2/";
pub const CURRENT: &str = "refs/entire/checkpoints/v2/full/current";

pub fn v2_refs(env: &TestEnv, dir: &Path) -> BTreeMap<String, String> {
    env.git(
        dir,
        &["for-each-ref", "--format=%(refname) %(objectname)", V2],
    )
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(r, c)| (r.to_string(), c.to_string()))
    .collect()
}

/// `path -> blob` of every blob under `rev` (`git ls-tree -r`).
pub fn blobs(env: &TestEnv, dir: &Path, rev: &str) -> BTreeMap<String, String> {
    env.git(dir, &["ls-tree", "-r", rev])
        .lines()
        .filter_map(|l| {
            let (meta, path) = l.split_once('\t')?;
            Some((path.to_string(), meta.rsplit(' ').next()?.to_string()))
        })
        .collect()
}

/// `checkpoint path -> raw transcript blobs` over `/full/current` and every archive.
pub fn v2_raw(env: &TestEnv, dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in v2_refs(env, dir).keys().filter(|r| r.contains("/full/")) {
        for (path, blob) in blobs(env, dir, r) {
            if let Some(cp) = path.strip_suffix("/raw_transcript") {
                let cp = cp.rsplit_once('/').expect("slot dir").0;
                out.entry(cp.to_string()).or_default().insert(blob);
            }
        }
    }
    out
}

/// `checkpoint path -> full.jsonl blob of the last slot of each session_id` on the legacy branch (checkpoints
/// without any transcript left out: they have nothing on `/full`).
pub fn legacy_raw(env: &TestEnv, dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let all = blobs(env, dir, LEGACY);
    let mut out = BTreeMap::new();
    for (cp, _) in legacy_checkpoints(env, dir) {
        let mut by_session: BTreeMap<String, String> = BTreeMap::new();
        let mut slots: Vec<usize> = all
            .keys()
            .filter_map(|p| {
                p.strip_prefix(&format!("{cp}/"))?
                    .split_once('/')?
                    .0
                    .parse()
                    .ok()
            })
            .collect();
        slots.sort_unstable();
        slots.dedup();
        for slot in slots {
            let Some(blob) = all.get(&format!("{cp}/{slot}/full.jsonl")) else {
                continue;
            };
            let meta = env.git(
                dir,
                &["show", &format!("{LEGACY}:{cp}/{slot}/metadata.json")],
            );
            let meta: serde_json::Value = serde_json::from_str(&meta).expect("session metadata");
            let sid = meta["session_id"].as_str().expect("session_id").to_string();
            by_session.insert(sid, blob.clone());
        }
        if !by_session.is_empty() {
            out.insert(cp, by_session.into_values().collect());
        }
    }
    out
}

fn count_objects(env: &TestEnv, dir: &Path) -> String {
    env.git(dir, &["count-objects", "-v"])
}

#[test]
fn sample_to_v2_reuses_raw_transcripts_and_reruns_write_nothing() {
    let env = TestEnv::new();
    let dir = sample_repo(&env, "r");
    let first = migrate(&env, &dir, &["--to", "v2"]).ok();
    assert_eq!(first.trimmed(), "migrated 40, skipped 0, failed 0");
    let refs = v2_refs(&env, &dir);
    assert!(
        refs.contains_key(CURRENT) && refs.contains_key(&format!("{V2}main")),
        "{refs:?}"
    );
    let main = blobs(&env, &dir, &format!("{V2}main"));
    for (cp, _) in legacy_checkpoints(&env, &dir) {
        assert!(
            main.contains_key(&format!("{cp}/metadata.json")),
            "{cp} not on /main"
        );
        assert!(
            main.contains_key(&format!("{cp}/0/metadata.json")),
            "{cp} slot 0"
        );
        // Root sessions[] paths resolve (the legacy 76/74489fb0a9 has doubled-prefix paths).
        let root = env.git(&dir, &["show", &format!("{V2}main:{cp}/metadata.json")]);
        let root: serde_json::Value = serde_json::from_str(&root).expect("root metadata");
        for s in root["sessions"].as_array().expect("sessions") {
            for key in ["metadata", "transcript", "content_hash", "prompt"] {
                let p = s[key].as_str().unwrap_or("").trim_start_matches('/');
                assert!(
                    p.is_empty() || main.contains_key(p),
                    "{cp}: {key} {p:?} does not resolve"
                );
            }
        }
    }
    assert_eq!(v2_raw(&env, &dir), legacy_raw(&env, &dir));
    let queue = std::fs::read_to_string(dir.join(".git/entire-checkpoint-push-queue.jsonl"))
        .expect("push queue");
    assert!(
        queue.contains(&format!("{V2}main")) && queue.contains(CURRENT),
        "{queue}"
    );

    let objects = count_objects(&env, &dir);
    for _ in 0..2 {
        let again = migrate(&env, &dir, &["--to", "v2"]).ok();
        assert_eq!(again.trimmed(), "migrated 0, skipped 40, failed 0");
        assert_eq!(v2_refs(&env, &dir), refs);
        assert_eq!(
            count_objects(&env, &dir),
            objects,
            "a no-op rerun wrote objects"
        );
    }
}

#[test]
fn interrupted_run_resumes_to_the_uninterrupted_result() {
    let env = TestEnv::new();
    let dir = sample_repo(&env, "r");
    migrate(&env, &dir, &["--to", "v2"]).ok();
    let whole = v2_refs(&env, &dir);
    // A run killed after every /main write but before the /full writes: /main complete, /full missing.
    env.git(&dir, &["update-ref", "-d", CURRENT]);
    let resumed = migrate(&env, &dir, &["--to", "v2"]).ok();
    assert_eq!(resumed.trimmed(), "migrated 40, skipped 0, failed 0");
    assert_eq!(v2_refs(&env, &dir), whole);
    assert_eq!(v2_raw(&env, &dir), legacy_raw(&env, &dir));
}

#[test]
fn a_run_stopped_between_batches_resumes_to_the_uninterrupted_result() {
    let env = TestEnv::new();
    env.set_env("ENTIRE_TEST_V2_GENERATION_MAX", "10");
    let reference = sample_repo(&env, "reference");
    migrate(&env, &reference, &["--to", "v2"]).ok();
    let whole = v2_refs(&env, &reference);
    let log = env.git(&reference, &["log", "--format=%s", &format!("{V2}main")]);
    assert_eq!(
        log.lines()
            .filter(|l| l.starts_with("Migrate batch: 10 checkpoint(s)"))
            .count(),
        4,
        "one /main commit per batch: {log}"
    );
    let archive = |n: u64| format!("{V2}full/{n:013}");
    // /main holds the first two batches, archives 3 and 4 and /full/current are gone.
    let dir = sample_repo(&env, "half");
    migrate(&env, &dir, &["--to", "v2"]).ok();
    let mid = env.git(&dir, &["rev-parse", &format!("{V2}main~2")]);
    env.git(&dir, &["update-ref", &format!("{V2}main"), &mid]);
    for r in [archive(3), archive(4), CURRENT.to_string()] {
        env.git(&dir, &["update-ref", "-d", &r]);
    }
    let run = migrate(&env, &dir, &["--to", "v2"]).ok();
    assert_eq!(run.trimmed(), "migrated 20, skipped 20, failed 0");
    assert_eq!(v2_refs(&env, &dir), whole);
    // /main complete, the last two archives lost: only /full is packed, into the same archives.
    let dir = sample_repo(&env, "full-lost");
    migrate(&env, &dir, &["--to", "v2"]).ok();
    for r in [archive(3), archive(4)] {
        env.git(&dir, &["update-ref", "-d", &r]);
    }
    let run = migrate(&env, &dir, &["--to", "v2"]).ok();
    assert_eq!(run.trimmed(), "migrated 20, skipped 20, failed 0");
    assert_eq!(v2_refs(&env, &dir), whole);
    assert_eq!(v2_raw(&env, &dir), legacy_raw(&env, &dir));
}

#[test]
fn archives_hold_exactly_one_generation_and_reruns_never_duplicate_them() {
    let env = TestEnv::new();
    env.set_env("ENTIRE_TEST_V2_GENERATION_MAX", "10");
    let dir = sample_repo(&env, "r");
    migrate(&env, &dir, &["--to", "v2"]).ok();
    let refs = v2_refs(&env, &dir);
    let archives: Vec<&String> = refs
        .keys()
        .filter(|r| r.ends_with(|c: char| c.is_ascii_digit()))
        .collect();
    assert_eq!(archives.len(), 4, "{refs:?}");
    for a in &archives {
        let cps: BTreeSet<String> = blobs(&env, &dir, a)
            .keys()
            .filter(|p| p.matches('/').count() >= 2)
            .map(|p| p.splitn(3, '/').take(2).collect::<Vec<_>>().join("/"))
            .collect();
        assert_eq!(cps.len(), 10, "{a}: {cps:?}");
        env.git(&dir, &["cat-file", "-e", &format!("{a}:generation.json")]);
    }
    let pending = std::fs::read_to_string(dir.join(".git/entire-v2-rotations/pending.json"))
        .expect("pending publications");
    for a in &archives {
        assert!(pending.contains(a.as_str()), "{a} not pending: {pending}");
    }
    migrate(&env, &dir, &["--to", "v2"]).ok();
    assert_eq!(v2_refs(&env, &dir), refs);
}

#[test]
fn new_legacy_checkpoints_are_the_only_ones_migrated_and_dry_runs_write_nothing() {
    let env = TestEnv::new();
    let dir = sample_repo(&env, "r");
    let tip = env.git(&dir, &["rev-parse", LEGACY]);
    let older = env.git(&dir, &["rev-parse", &format!("{LEGACY}~10")]);
    env.git(&dir, &["update-ref", LEGACY, &older]);
    let before = legacy_checkpoints(&env, &dir).len();
    let first = migrate(&env, &dir, &["--to", "v2"]).ok();
    assert_eq!(
        first.trimmed(),
        format!("migrated {before}, skipped 0, failed 0")
    );
    env.git(&dir, &["update-ref", LEGACY, &tip]);
    let after = legacy_checkpoints(&env, &dir).len();
    assert!(after > before);
    let second = migrate(&env, &dir, &["--to", "v2"]).ok();
    let want = format!("migrated {}, skipped {before}, failed 0", after - before);
    assert_eq!(second.trimmed(), want);
    assert_eq!(v2_raw(&env, &dir), legacy_raw(&env, &dir));

    let refs = v2_refs(&env, &dir);
    let dry = migrate(&env, &dir, &["--to", "v2", "--dry-run"]).ok();
    assert!(dry.stdout.contains("skipped 40"), "{}", dry.stdout);
    assert_eq!(v2_refs(&env, &dir), refs, "a dry run wrote refs");
}

/// Every checkpoint path under the `/full` refs, with the refs holding it.
pub fn full_membership(env: &TestEnv, dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in v2_refs(env, dir).keys().filter(|r| r.contains("/full/")) {
        for line in env
            .git(dir, &["ls-tree", "-d", "-r", "--name-only", r])
            .lines()
        {
            if line.matches('/').count() == 1 {
                out.entry(line.to_string()).or_default().push(r.clone());
            }
        }
    }
    out
}

#[test]
fn force_prunes_every_generation_then_migrates_fresh() {
    let env = TestEnv::new();
    env.set_env("ENTIRE_TEST_V2_GENERATION_MAX", "10");
    let dir = sample_repo(&env, "r");
    migrate(&env, &dir, &["--to", "v2"]).ok();
    let before = v2_refs(&env, &dir);
    let forced = migrate(&env, &dir, &["--to", "v2", "--force"]).ok();
    assert_eq!(forced.trimmed(), "migrated 40, skipped 0, failed 0");
    let after = v2_refs(&env, &dir);
    assert_ne!(after[&format!("{V2}main")], before[&format!("{V2}main")]);
    let main_log = env.git(&dir, &["log", "--format=%s", &format!("{V2}main")]);
    assert!(
        main_log.contains("Reset checkpoints before force migration"),
        "{main_log}"
    );
    let members = full_membership(&env, &dir);
    assert_eq!(members.len(), 40, "{members:?}");
    assert!(
        members.values().all(|refs| refs.len() == 1),
        "duplicated: {members:?}"
    );
    assert_eq!(v2_raw(&env, &dir), legacy_raw(&env, &dir));
    let main = blobs(&env, &dir, &format!("{V2}main"));
    for (cp, _) in legacy_checkpoints(&env, &dir) {
        assert!(
            main.contains_key(&format!("{cp}/metadata.json")),
            "{cp} not on /main"
        );
    }
    let again = migrate(&env, &dir, &["--to", "v2"]).ok();
    assert_eq!(again.trimmed(), "migrated 0, skipped 40, failed 0");
}
