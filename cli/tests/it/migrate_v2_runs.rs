//! `git entire-migrate --to v2` across runs: kill -9 at 20 points then a rerun converges to exactly the refs
//! (and pending publications) of an uninterrupted run, `--force` equals a fresh migration, sparse legacy
//! slots, signing, and a synthetic history (merges, multi-session checkpoints) migrated to the same commits
//! in two repositories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::env::TestEnv;
use crate::migrate::{legacy_checkpoints, migrate, sample_repo, LEGACY};
use crate::migrate_history::{fast_import, synthetic_legacy, LegacyCommit};
use crate::migrate_v2::{blobs, full_membership, legacy_raw, v2_raw, v2_refs, CURRENT, V2};

/// `archive ref -> commit` of the pending publications (bare or not).
fn pending(dir: &Path) -> BTreeMap<String, String> {
    let file = ["", ".git"]
        .iter()
        .map(|g| dir.join(g).join("entire-v2-rotations/pending.json"))
        .find(|p| p.exists());
    let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) else {
        return BTreeMap::new();
    };
    let doc: Value = serde_json::from_str(&text).expect("pending.json");
    let mut out = BTreeMap::new();
    for p in doc["publications"].as_array().expect("publications") {
        let name = p["archive_ref_name"].as_str().expect("name").to_string();
        let commit = p["archive_commit_hash"].as_str().expect("hash").to_string();
        assert!(
            out.insert(name, commit).is_none(),
            "duplicate record: {text}"
        );
    }
    out
}

fn kill_after(env: &TestEnv, dir: &Path, delay: Duration) {
    // The binary itself, not `git entire-migrate`: killing git would leave its child running.
    let mut child = env
        .cmd("git-entire-migrate", dir)
        .args(["--to", "v2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("migration starts");
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

#[test]
fn kill_at_20_points_then_rerun_converges_to_the_uninterrupted_result() {
    let env = TestEnv::new();
    env.set_env("ENTIRE_TEST_V2_GENERATION_MAX", "10");
    let source = env.repo("source");
    synthetic_legacy(&env, &source, 400);
    let clone = |name: &str| {
        let dir = env.path().join(name);
        let (s, d) = (
            source.to_str().expect("utf-8"),
            dir.to_str().expect("utf-8"),
        );
        env.git(env.path(), &["clone", "-q", "--mirror", s, d]);
        dir
    };
    let reference = clone("reference");
    let start = std::time::Instant::now();
    migrate(&env, &reference, &["--to", "v2"]).ok();
    let full = start.elapsed();
    let want = v2_refs(&env, &reference);
    let want_pending = pending(&reference);
    assert_eq!(want_pending.len(), 40, "{want_pending:?}");
    let mut interrupted = 0;
    for step in 0..20u32 {
        let dir = clone(&format!("killed-{step}"));
        let delay = full * step / 20 + Duration::from_micros(u64::from(step) * 200);
        kill_after(&env, &dir, delay);
        let killed = v2_refs(&env, &dir);
        // All or nothing: the refs move in one transaction.
        assert!(
            killed.is_empty() || killed == want,
            "step {step}: {killed:?}"
        );
        interrupted += usize::from(killed != want);
        let run = migrate(&env, &dir, &["--to", "v2"]).ok();
        let want_line = match killed == want {
            true => "migrated 0, skipped 400, failed 0",
            false => "migrated 400, skipped 0, failed 0",
        };
        assert_eq!(run.trimmed(), want_line, "step {step}");
        assert_eq!(v2_refs(&env, &dir), want, "step {step} ({delay:?})");
        assert_eq!(pending(&dir), want_pending, "step {step}: pending");
        let members = full_membership(&env, &dir);
        assert!(
            members.values().all(|r| r.len() == 1),
            "step {step}: {members:?}"
        );
        env.git(&dir, &["fsck", "--no-dangling", "--strict"]);
    }
    assert!(interrupted > 0, "no kill landed before the run finished");
}

#[test]
fn force_equals_a_fresh_migration_and_drops_stale_pending_records() {
    let env = TestEnv::new();
    env.set_env("ENTIRE_TEST_V2_GENERATION_MAX", "10");
    let fresh = sample_repo(&env, "fresh");
    migrate(&env, &fresh, &["--to", "v2"]).ok();
    let want = v2_refs(&env, &fresh);
    let dir = sample_repo(&env, "forced");
    migrate(&env, &dir, &["--to", "v2"]).ok();
    let run = migrate(&env, &dir, &["--to", "v2", "--force"]).ok();
    assert_eq!(run.trimmed(), "migrated 40, skipped 0, failed 0");
    let got = v2_refs(&env, &dir);
    let tree = |d: &Path, r: &str| env.git(d, &["rev-parse", &format!("{r}^{{tree}}")]);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for r in want.keys() {
        assert_eq!(tree(&dir, r), tree(&fresh, r), "{r}");
        if r.ends_with(|c: char| c.is_ascii_digit()) {
            assert_eq!(
                got[r], want[r],
                "{r}: archives are orphans, equal to a fresh run's"
            );
        }
    }
    // Every pending record names an archive that exists, at its current commit, once.
    let records = pending(&dir);
    assert_eq!(records.len(), 4, "{records:?}");
    for (name, commit) in &records {
        assert_eq!(got.get(name), Some(commit), "stale record for {name}");
    }
    assert_eq!(v2_raw(&env, &dir), legacy_raw(&env, &dir));
}

/// A legacy checkpoint whose only session slots are 0 and 2, plus a duplicated session.
fn sparse_legacy(env: &TestEnv, dir: &Path) -> (String, String) {
    let (a, b) = ("ab12cd34ef56", "0123456789ab");
    let file = |id: &str, slot: usize, sid: &str| -> Vec<(String, Vec<u8>)> {
        let base = format!("{}/{}/{slot}", &id[..2], &id[2..]);
        let meta = format!(
            "{{\"checkpoint_id\":\"{id}\",\"session_id\":\"{sid}\",\"agent\":\"Claude Code\",\
             \"created_at\":\"2026-01-0{}T00:00:00Z\"}}",
            slot + 1
        );
        let raw = format!("{{\"type\":\"user\",\"message\":{{\"content\":\"{sid} {slot}\"}}}}\n");
        vec![
            (format!("{base}/metadata.json"), meta.into_bytes()),
            (format!("{base}/full.jsonl"), raw.into_bytes()),
        ]
    };
    let root = |id: &str| {
        (
            format!("{}/{}/metadata.json", &id[..2], &id[2..]),
            format!("{{\"checkpoint_id\":\"{id}\",\"sessions\":[]}}").into_bytes(),
        )
    };
    let mut files = vec![root(a), root(b)];
    files.extend(file(a, 0, "s-one"));
    files.extend(file(a, 2, "s-two"));
    files.extend(file(b, 0, "s-same"));
    files.extend(file(b, 1, "s-same"));
    fast_import(
        env,
        dir,
        &[LegacyCommit {
            parents: vec![],
            date: 1_800_000_000,
            subject: "Checkpoint: two".into(),
            files,
        }],
    );
    (
        format!("{}/{}", &a[..2], &a[2..]),
        format!("{}/{}", &b[..2], &b[2..]),
    )
}

#[test]
fn sparse_legacy_slots_are_renumbered_as_upstream_and_reruns_skip_them() {
    let env = TestEnv::new();
    let dir = env.repo("r");
    let (a, b) = sparse_legacy(&env, &dir);
    let run = migrate(&env, &dir, &["--to", "v2"]).ok();
    assert_eq!(run.trimmed(), "migrated 2, skipped 0, failed 0");
    let main = blobs(&env, &dir, &format!("{V2}main"));
    let full = blobs(&env, &dir, CURRENT);
    let sid = |path: &str| -> String {
        let m = env.git(&dir, &["show", &format!("{V2}main:{path}")]);
        let v: Value = serde_json::from_str(&m).expect("metadata");
        v["session_id"].as_str().expect("session_id").to_string()
    };
    // Upstream writes session by session into slot len(sessions): legacy 0 and 2 become 0 and 1.
    assert_eq!(sid(&format!("{a}/0/metadata.json")), "s-one");
    assert_eq!(sid(&format!("{a}/1/metadata.json")), "s-two");
    assert!(
        !main.keys().any(|p| p.starts_with(&format!("{a}/2/"))),
        "{main:?}"
    );
    // The legacy blobs are the v2 blobs, slot for slot.
    let legacy = blobs(&env, &dir, LEGACY);
    assert_eq!(
        full[&format!("{a}/1/raw_transcript")],
        legacy[&format!("{a}/2/full.jsonl")]
    );
    // One session in two legacy slots: one v2 slot with the last slot's content.
    assert_eq!(sid(&format!("{b}/0/metadata.json")), "s-same");
    assert!(
        !main.contains_key(&format!("{b}/1/metadata.json")),
        "{main:?}"
    );
    assert_eq!(
        full[&format!("{b}/0/raw_transcript")],
        legacy[&format!("{b}/1/full.jsonl")]
    );
    let root = env.git(&dir, &["show", &format!("{V2}main:{a}/metadata.json")]);
    let root: Value = serde_json::from_str(&root).expect("root");
    assert_eq!(root["sessions"].as_array().map(Vec::len), Some(2), "{root}");
    let refs = v2_refs(&env, &dir);
    let again = migrate(&env, &dir, &["--to", "v2"]).ok();
    assert_eq!(again.trimmed(), "migrated 0, skipped 2, failed 0");
    assert_eq!(v2_refs(&env, &dir), refs);
}

fn ssh_key(env: &TestEnv) -> (PathBuf, PathBuf) {
    let key = env.path().join("key");
    env.run(
        env.path(),
        "ssh-keygen",
        ["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"]
            .into_iter()
            .chain([key.to_str().expect("utf-8")]),
    )
    .ok();
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let allowed = env.path().join("allowed_signers");
    std::fs::write(&allowed, format!("committer@example.com {public}")).expect("allowed");
    (key, allowed)
}

#[test]
fn signing_key_signs_every_v2_commit_and_no_sign_wins_over_config() {
    let env = TestEnv::new();
    env.set_env("ENTIRE_TEST_V2_GENERATION_MAX", "10");
    let (key, allowed) = ssh_key(&env);
    let dir = sample_repo(&env, "r");
    for (k, v) in [
        ("gpg.format", "ssh"),
        (
            "gpg.ssh.allowedSignersFile",
            allowed.to_str().expect("utf-8"),
        ),
    ] {
        env.git(&dir, &["config", k, v]);
    }
    let run = migrate(
        &env,
        &dir,
        &["--to", "v2", "--signing-key", key.to_str().expect("utf-8")],
    );
    run.ok();
    let refs = v2_refs(&env, &dir);
    assert_eq!(refs.len(), 6, "{refs:?}");
    for (name, commit) in &refs {
        env.run(&dir, "git", ["verify-commit", commit.as_str()])
            .ok();
        let log = env.git(&dir, &["log", "--format=%H", name]);
        for c in log.lines() {
            env.run(&dir, "git", ["verify-commit", c]).ok();
        }
    }
    // Ed25519 signatures are deterministic: the same legacy branch signs to the same IDs elsewhere.
    let other = sample_repo(&env, "other");
    for (k, v) in [
        ("gpg.format", "ssh"),
        ("user.signingKey", key.to_str().expect("utf-8")),
        ("commit.gpgSign", "true"),
    ] {
        env.git(&other, &["config", k, v]);
    }
    migrate(&env, &other, &["--to", "v2"]).ok();
    assert_eq!(v2_refs(&env, &other), refs);
    let plain = sample_repo(&env, "plain");
    env.git(&plain, &["config", "commit.gpgSign", "true"]);
    migrate(&env, &plain, &["--to", "v2", "--no-sign"]).ok();
    let main = env.git(&plain, &["cat-file", "commit", &format!("{V2}main")]);
    assert!(!main.contains("gpgsig"), "{main}");
}

#[test]
fn a_synthetic_history_migrates_to_the_same_commits_everywhere() {
    let env = TestEnv::new();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/gen-v1-fixture");
    let source = env.path().join("source.git");
    env.run(
        env.path(),
        "python3",
        [
            script.to_str().expect("utf-8"),
            "-n",
            "250",
            "--merge-every",
            "20",
            "--no-repack",
            source.to_str().expect("utf-8"),
        ],
    )
    .ok();
    let clone = |name: &str| {
        let dir = env.path().join(name);
        let (s, d) = (
            source.to_str().expect("utf-8"),
            dir.to_str().expect("utf-8"),
        );
        env.git(env.path(), &["clone", "-q", "--mirror", s, d]);
        dir
    };
    let (one, two) = (clone("one"), clone("two"));
    let run = migrate(&env, &one, &["--to", "v2"]).ok();
    let n = legacy_checkpoints(&env, &one).len();
    assert_eq!(run.trimmed(), format!("migrated {n}, skipped 0, failed 0"));
    migrate(&env, &two, &["--to", "v2"]).ok();
    assert_eq!(
        v2_refs(&env, &one),
        v2_refs(&env, &two),
        "same input, same commits"
    );
    migrate(&env, &one, &["--to", "v2", "--force"]).ok();
    let trees = |d: &Path| -> Vec<String> {
        v2_refs(&env, d)
            .keys()
            .map(|r| env.git(d, &["rev-parse", &format!("{r}^{{tree}}")]))
            .collect()
    };
    assert_eq!(trees(&one), trees(&two));
    assert_eq!(v2_raw(&env, &one), legacy_raw(&env, &one));
    let archives = v2_refs(&env, &two)
        .keys()
        .filter(|r| !r.ends_with("current") && r.contains("/full/"))
        .count();
    assert_eq!(archives, n / 100, "archives of exactly 100");
    env.git(&two, &["fsck", "--no-dangling", "--strict"]);
}
