//! `git entire write/show/status` end to end, in every rollout mode, against real git.

use std::path::{Path, PathBuf};

use crate::env::{sample_bundle, TestEnv};

const SAMPLE_BRANCH: &str = "refs/heads/entire/checkpoints/v1";

fn set_mode(repo: &Path, mode: Option<&str>) {
    std::fs::create_dir_all(repo.join(".entire")).expect("mkdir .entire");
    let body = match mode {
        Some(m) => format!("{{\"strategy_options\": {{\"checkpoint_store\": \"{m}\"}}}}\n"),
        None => "{}\n".to_string(),
    };
    std::fs::write(repo.join(".entire/settings.json"), body).expect("write settings");
}

/// A session directory with the given metadata JSON and transcript.
fn session(env: &TestEnv, name: &str, metadata: &str, transcript: &[u8]) -> PathBuf {
    let dir = env.path().join("sessions").join(name);
    std::fs::create_dir_all(&dir).expect("mkdir session");
    std::fs::write(dir.join("metadata.json"), metadata).expect("write metadata");
    std::fs::write(dir.join("full.jsonl"), transcript).expect("write transcript");
    std::fs::write(dir.join("prompt.txt"), format!("prompt of {name}\n")).expect("write prompt");
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn queue_lines(repo: &Path) -> Vec<String> {
    std::fs::read_to_string(repo.join(".git/entire-checkpoint-push-queue.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn write_show_round_trip_in_every_mode() {
    let env = TestEnv::new();
    let meta = r#"{"session_id": "s-1", "strategy": "manual-commit", "agent": "Claude Code", "files_touched": ["b.rs", "a.rs", "b.rs"], "checkpoints_count": 2, "token_usage": {"input_tokens": 5}, "future_field": {"keep": [1, 2]}}"#;
    let transcript = b"{\"type\":\"user\",\"text\":\"<hi> & bye\"}\n{\"type\":\"assistant\"}\n";
    let dir = session(&env, "one", meta, transcript);
    for (mode, id_len, has_ref, has_branch) in [
        (None, 12, false, true),
        (Some("refs-v1-mirror"), 26, true, true),
        (Some("refs-v1"), 26, true, false),
    ] {
        let repo = env.repo(&format!("repo-{}", mode.unwrap_or("v1")));
        set_mode(&repo, mode);
        let id = env
            .entire(&repo, &["write", s(&dir)])
            .ok()
            .trimmed()
            .to_string();
        assert_eq!(
            id.len(),
            id_len,
            "mode {mode:?} mints the right ID kind: {id}"
        );
        let shard = &id[id.len() - 2..];
        let ref_name = format!("refs/entire/checkpoints/{shard}/{id}");
        let refs = env.git(&repo, &["for-each-ref", "--format=%(refname)"]);
        assert_eq!(refs.contains(&ref_name), has_ref, "mode {mode:?}: {refs}");
        assert_eq!(
            refs.contains(SAMPLE_BRANCH),
            has_branch,
            "mode {mode:?}: {refs}"
        );
        assert_eq!(
            queue_lines(&repo).len(),
            usize::from(has_ref),
            "queued iff refs are written"
        );

        let shown = env.entire(&repo, &["show", &id, "0/full.jsonl"]).ok();
        assert_eq!(
            shown.stdout_bytes, transcript,
            "transcript round-trips in {mode:?}"
        );
        let root: serde_json::Value =
            serde_json::from_str(&env.entire(&repo, &["show", &id]).ok().stdout)
                .expect("root metadata is JSON");
        assert_eq!(root["checkpoint_id"], id.as_str());
        assert_eq!(root["files_touched"], serde_json::json!(["a.rs", "b.rs"]));
        let prefix = if has_ref {
            String::new()
        } else {
            format!("/{}/{}", &id[..2], &id[2..])
        };
        assert_eq!(
            root["sessions"][0]["transcript"],
            format!("{prefix}/0/full.jsonl")
        );
        assert_eq!(root.get("checkpoints_version").is_some(), has_ref, "{root}");
        let session: serde_json::Value = serde_json::from_str(
            &env.entire(&repo, &["show", &id, "0/metadata.json"])
                .ok()
                .stdout,
        )
        .expect("json");
        assert_eq!(
            session["future_field"],
            serde_json::json!({"keep": [1, 2]}),
            "unknown fields survive"
        );
        assert_eq!(session["checkpoint_id"], id.as_str());
        let hash = env
            .entire(&repo, &["show", &id, "0/content_hash.txt"])
            .ok()
            .stdout;
        assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
        if has_ref {
            let kind = env.git(&repo, &["cat-file", "-t", &ref_name]);
            assert_eq!(kind, "commit", "checkpoint refs point at commits");
            let parents = env.git(&repo, &["rev-list", "--parents", "-n1", &ref_name]);
            assert_eq!(parents.split(' ').count(), 1, "first write is an orphan");
        }
        env.git(&repo, &["fsck", "--strict"]);
    }
}

#[test]
fn rewriting_a_session_replaces_its_slot_and_new_sessions_append() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1"));
    let a1 = session(
        &env,
        "a1",
        r#"{"session_id": "A", "checkpoints_count": 1}"#,
        b"a1\n",
    );
    std::fs::write(a1.join("context.md"), "stale context\n").expect("write context");
    let id = env
        .entire(&repo, &["write", s(&a1)])
        .ok()
        .trimmed()
        .to_string();
    let b = session(
        &env,
        "b",
        r#"{"session_id": "B", "checkpoints_count": 2}"#,
        b"b\n",
    );
    env.entire(&repo, &["write", "--id", &id, s(&b)]).ok();
    let a2 = session(
        &env,
        "a2",
        r#"{"session_id": "A", "checkpoints_count": 3}"#,
        b"a2\n",
    );
    env.entire(&repo, &["write", "--id", &id, s(&a2)]).ok();

    assert_eq!(
        env.entire(&repo, &["show", &id, "0/full.jsonl"])
            .ok()
            .stdout,
        "a2\n"
    );
    assert_eq!(
        env.entire(&repo, &["show", &id, "1/full.jsonl"])
            .ok()
            .stdout,
        "b\n"
    );
    env.entire(&repo, &["show", &id, "0/context.md"]).code(1);
    let root: serde_json::Value =
        serde_json::from_str(&env.entire(&repo, &["show", &id]).ok().stdout).expect("json");
    assert_eq!(root["checkpoints_count"], 5);
    assert_eq!(root["sessions"].as_array().map(Vec::len), Some(2));
    let ref_name = format!("refs/entire/checkpoints/{}/{id}", &id[24..]);
    assert_eq!(
        env.git(&repo, &["rev-list", "--count", &ref_name]),
        "3",
        "per-checkpoint history"
    );
    let unchanged = env
        .entire(&repo, &["write", "--json", "--id", &id, s(&a2)])
        .ok();
    assert!(
        unchanged.stdout.contains("\"changed\": false"),
        "{}",
        unchanged.stdout
    );
    assert_eq!(
        env.git(&repo, &["rev-list", "--count", &ref_name]),
        "3",
        "an identical write adds no commit"
    );
}

#[test]
fn large_transcripts_are_chunked_and_reassembled() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1"));
    let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(1 << 20));
    let transcript = line.repeat(51);
    let dir = session(
        &env,
        "big",
        r#"{"session_id": "big"}"#,
        transcript.as_bytes(),
    );
    let id = env
        .entire(&repo, &["write", s(&dir)])
        .ok()
        .trimmed()
        .to_string();
    let ref_name = format!("refs/entire/checkpoints/{}/{id}", &id[24..]);
    let files = env.git(&repo, &["ls-tree", "--name-only", &format!("{ref_name}:0")]);
    assert!(
        files.lines().any(|f| f == "full.jsonl.001"),
        "chunked: {files}"
    );
    let size: usize = env
        .git(
            &repo,
            &["cat-file", "-s", &format!("{ref_name}:0/full.jsonl")],
        )
        .parse()
        .expect("size");
    assert!(size <= 50 * 1024 * 1024, "chunk 0 within the cap: {size}");
    let shown = env.entire(&repo, &["show", &id, "0/full.jsonl"]).ok();
    assert!(
        shown.stdout_bytes == transcript.as_bytes(),
        "reassembled transcript differs"
    );
}

#[test]
fn bad_input_gets_specific_errors() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    for bad in [
        "../x",
        "a/b",
        "A3B2C4D5E6F7",
        "a3b2c4d5e6f70",
        "01m3we2vx9hqc3nvy9bwycw6jv",
        "",
    ] {
        let run = env.entire(&repo, &["show", bad]).code(1);
        assert!(
            run.stderr.contains("invalid checkpoint ID"),
            "{bad:?}: {}",
            run.stderr
        );
    }
    let missing = env.entire(&repo, &["show", "a3b2c4d5e6c4"]).code(1);
    assert!(
        missing.stderr.contains("a3b2c4d5e6c4")
            && missing
                .stderr
                .contains("refs/entire/checkpoints/c4/a3b2c4d5e6c4"),
        "names the ID and where it looked: {}",
        missing.stderr
    );
    let no_sid = session(&env, "nosid", r#"{"agent": "x"}"#, b"t\n");
    let run = env.entire(&repo, &["write", s(&no_sid)]).code(1);
    assert!(
        run.stderr.contains("session_id") && run.stderr.contains("metadata.json"),
        "{}",
        run.stderr
    );
    env.entire(&repo, &["write"]).code(2);
    env.entire(&repo, &["frobnicate"]).code(2);

    std::fs::create_dir_all(repo.join(".entire")).expect("mkdir");
    let good = session(&env, "good", r#"{"session_id": "g"}"#, b"g\n");
    for (body, needle) in [
        ("{not json", "invalid JSON"),
        (
            r#"{"strategy_options": {"checkpoint_store": "refs-v9"}}"#,
            "refs-v9",
        ),
        (r#"{"checkpoints": {"primary": {"type": "s3"}}}"#, "s3"),
    ] {
        std::fs::write(repo.join(".entire/settings.json"), body).expect("write settings");
        let before = env.git(&repo, &["for-each-ref"]);
        let run = env.entire(&repo, &["write", s(&good)]).code(1);
        assert!(
            run.stderr.contains("settings.json") && run.stderr.contains(needle),
            "{body}: {}",
            run.stderr
        );
        assert_eq!(
            env.git(&repo, &["for-each-ref"]),
            before,
            "nothing written on a settings error"
        );
    }
    std::fs::write(repo.join(".entire/settings.json"), "{}").expect("reset settings");
    std::fs::write(repo.join(".entire/settings.local.json"), "[]").expect("write local settings");
    let run = env.entire(&repo, &["status"]).code(1);
    assert!(run.stderr.contains("settings.local.json"), "{}", run.stderr);
}

#[test]
fn manifest_and_status() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1-mirror"));
    let files = env.path().join("m");
    std::fs::create_dir_all(&files).expect("mkdir");
    std::fs::write(files.join("meta-x.json"), r#"{"session_id": "x"}"#).expect("write");
    std::fs::write(files.join("t-x.jsonl"), "x\n").expect("write");
    session(&env, "y", r#"{"session_id": "y"}"#, b"y\n");
    let manifest = files.join("manifest.json");
    std::fs::write(
        &manifest,
        r#"{"id": "01KVBJCWYA4YW6J5M9GP655HZN", "sessions": [{"metadata": "meta-x.json", "transcript": "t-x.jsonl"}, "../sessions/y"]}"#,
    )
    .expect("write manifest");
    let id = env
        .entire(&repo, &["write", "--manifest", s(&manifest)])
        .ok()
        .trimmed()
        .to_string();
    assert_eq!(id, "01KVBJCWYA4YW6J5M9GP655HZN");
    assert_eq!(
        env.entire(&repo, &["show", &id, "1/full.jsonl"])
            .ok()
            .stdout,
        "y\n"
    );
    let status: serde_json::Value =
        serde_json::from_str(&env.entire(&repo, &["status", "--json"]).ok().stdout).expect("json");
    assert_eq!(status["mode"], "refs-v1-mirror");
    assert_eq!(status["queue_length"], 1);
    assert_eq!(
        status["queued"][0],
        "refs/entire/checkpoints/ZN/01KVBJCWYA4YW6J5M9GP655HZN"
    );
    // The mirror carries the same checkpoint at the legacy path.
    let mirrored = env.git(
        &repo,
        &["ls-tree", "--name-only", "-r", "entire/checkpoints/v1"],
    );
    assert!(
        mirrored.contains("01/KVBJCWYA4YW6J5M9GP655HZN/1/full.jsonl"),
        "{mirrored}"
    );
}

#[test]
fn works_from_subdirectories_linked_worktrees_and_bare_repos() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1"));
    env.git(&repo, &["add", ".entire"]);
    env.git(&repo, &["commit", "-q", "-m", "settings"]);
    let dir = session(&env, "s", r#"{"session_id": "s"}"#, b"s\n");
    std::fs::create_dir_all(repo.join("sub/dir")).expect("mkdir");
    let id = env
        .entire(&repo.join("sub/dir"), &["write", s(&dir)])
        .ok()
        .trimmed()
        .to_string();
    let wt = env.path().join("wt");
    env.git(&repo, &["worktree", "add", "-q", s(&wt)]);
    assert_eq!(
        env.entire(&wt, &["show", &id, "0/full.jsonl"]).ok().stdout,
        "s\n"
    );
    let id2 = env
        .entire(&wt, &["write", s(&dir)])
        .ok()
        .trimmed()
        .to_string();
    let queued = queue_lines(&repo);
    assert_eq!(
        queued.len(),
        2,
        "worktrees share the common-dir queue: {queued:?}"
    );
    assert!(queued[1].contains(&id2));
    let bare = env.path().join("bare.git");
    env.git(env.path(), &["clone", "-q", "--bare", s(&repo), s(&bare)]);
    env.git(
        &repo,
        &["push", "-q", s(&bare), "refs/entire/*:refs/entire/*"],
    );
    assert_eq!(
        env.entire(&bare, &["show", &id, "0/full.jsonl"])
            .ok()
            .stdout,
        "s\n"
    );
}

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
    env.git(env.path(), &["init", "-q", "-b", "main", s(&src)]);
    env.git(
        &src,
        &[
            "fetch",
            "-q",
            s(&sample_bundle()),
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
            &["push", "-q", s(&copy), &format!("{ref_name}:{ref_name}")],
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
            env.entire(&fresh, &["write", "--id", &id, s(dir)]).ok();
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

#[test]
fn concurrent_writers_to_one_checkpoint_lose_no_session() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1-mirror"));
    let id = "01KVBJCWYA4YW6J5M9GP655HZN";
    let dirs: Vec<PathBuf> = (0..6)
        .map(|i| {
            session(
                &env,
                &format!("c{i}"),
                &format!(r#"{{"session_id": "sess-{i}"}}"#),
                format!("t{i}\n").as_bytes(),
            )
        })
        .collect();
    let children: Vec<_> = dirs
        .iter()
        .map(|d| {
            env.cmd("git", &repo)
                .args(["entire", "write", "--id", id, s(d)])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("writer starts")
        })
        .collect();
    for mut c in children {
        assert!(
            c.wait().expect("writer exits").success(),
            "a concurrent writer failed"
        );
    }
    let root: serde_json::Value =
        serde_json::from_str(&env.entire(&repo, &["show", id]).ok().stdout).expect("json");
    assert_eq!(
        root["sessions"].as_array().map(Vec::len),
        Some(6),
        "every session has a slot: {root}"
    );
    let ref_name = format!("refs/entire/checkpoints/ZN/{id}");
    assert_eq!(
        env.git(&repo, &["rev-list", "--count", &ref_name]),
        "6",
        "one commit per write, none lost"
    );
    let mirror = env.git(
        &repo,
        &[
            "ls-tree",
            "-d",
            "--name-only",
            &format!("{SAMPLE_BRANCH}:01/KVBJCWYA4YW6J5M9GP655HZN"),
        ],
    );
    assert_eq!(
        mirror.lines().count(),
        6,
        "the mirror got every session too"
    );
    let queued = queue_lines(&repo);
    assert!(
        queued.iter().all(|l| l.contains(&ref_name)) && !queued.is_empty(),
        "{queued:?}"
    );
    env.git(&repo, &["fsck", "--strict"]);
}

#[test]
fn a_failed_mirror_write_is_a_warning_and_the_checkpoint_stays_readable() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1-mirror"));
    // Another process "holds" the legacy branch: its lock file exists.
    let lock = repo.join(".git/refs/heads/entire/checkpoints/v1.lock");
    std::fs::create_dir_all(lock.parent().expect("parent")).expect("mkdir");
    std::fs::write(&lock, "").expect("create lock");
    let dir = session(&env, "m", r#"{"session_id": "m"}"#, b"m\n");
    let run = env.entire(&repo, &["write", s(&dir)]).ok();
    assert!(
        run.stderr.contains(
            "warning: mirror write to the legacy branch refs/heads/entire/checkpoints/v1 failed"
        ),
        "{}",
        run.stderr
    );
    let id = run.trimmed().to_string();
    assert_eq!(
        env.entire(&repo, &["show", &id, "0/full.jsonl"])
            .ok()
            .stdout,
        "m\n"
    );
    assert_eq!(
        queue_lines(&repo).len(),
        1,
        "the authoritative write was queued"
    );
    assert!(
        env.run(&repo, "git", ["rev-parse", "--verify", "-q", SAMPLE_BRANCH])
            .status
            != 0,
        "no branch was written"
    );
}

#[test]
fn fsck_reports_mismatched_refs_and_hashes() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1"));
    let dir = session(&env, "f", r#"{"session_id": "f"}"#, b"f\n");
    let id = env
        .entire(&repo, &["write", s(&dir)])
        .ok()
        .trimmed()
        .to_string();
    env.entire(&repo, &["fsck"]).ok();
    let good = format!("refs/entire/checkpoints/{}/{id}", &id[24..]);
    // A ref whose tree belongs to another checkpoint, and one whose transcript no longer matches its hash.
    env.git(
        &repo,
        &[
            "update-ref",
            "refs/entire/checkpoints/c4/a3b2c4d5e6c4",
            &good,
        ],
    );
    let tree = env.git(&repo, &["rev-parse", &format!("{good}^{{tree}}")]);
    let slot = env.git(&repo, &["rev-parse", &format!("{good}:0")]);
    let bad_blob = env.git_stdin(&repo, &["hash-object", "-w", "--stdin"], "tampered\n");
    let listing = env.git(&repo, &["ls-tree", &slot]).replace(
        &env.git(&repo, &["rev-parse", &format!("{good}:0/full.jsonl")]),
        &bad_blob,
    );
    let new_slot = env.git_stdin(&repo, &["mktree"], &format!("{listing}\n"));
    let root = env
        .git(&repo, &["ls-tree", &tree])
        .replace(&slot, &new_slot);
    let new_root = env.git_stdin(&repo, &["mktree"], &format!("{root}\n"));
    let commit = env.git(
        &repo,
        &["commit-tree", &new_root, "-p", &good, "-m", "tamper"],
    );
    env.git(&repo, &["update-ref", &good, &commit]);

    let run = env.entire(&repo, &["fsck", "--json"]).code(1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let problems: Vec<String> = report["problems"]
        .as_array()
        .expect("array")
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["subject"].as_str().unwrap_or(""),
                p["problem"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(report["checked"], 2);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("c4/a3b2c4d5e6c4") && p.contains("names checkpoint")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains(&good) && p.contains("content_hash.txt does not match")),
        "{problems:?}"
    );
}
