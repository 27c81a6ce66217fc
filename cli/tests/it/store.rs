//! `git entire write/show/status` end to end, in every rollout mode, against real git.

use crate::env::TestEnv;
use crate::fixtures::{path_str, queued, session, set_mode};

const SAMPLE_BRANCH: &str = "refs/heads/entire/checkpoints/v1";

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
            .entire(&repo, &["write", path_str(&dir)])
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
            queued(&env, &repo).len(),
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
        .entire(&repo, &["write", path_str(&a1)])
        .ok()
        .trimmed()
        .to_string();
    let b = session(
        &env,
        "b",
        r#"{"session_id": "B", "checkpoints_count": 2}"#,
        b"b\n",
    );
    env.entire(&repo, &["write", "--id", &id, path_str(&b)])
        .ok();
    let a2 = session(
        &env,
        "a2",
        r#"{"session_id": "A", "checkpoints_count": 3}"#,
        b"a2\n",
    );
    env.entire(&repo, &["write", "--id", &id, path_str(&a2)])
        .ok();

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
        .entire(&repo, &["write", "--json", "--id", &id, path_str(&a2)])
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
        .entire(&repo, &["write", path_str(&dir)])
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
    let run = env.entire(&repo, &["write", path_str(&no_sid)]).code(1);
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
        let run = env.entire(&repo, &["write", path_str(&good)]).code(1);
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
        .entire(&repo, &["write", "--manifest", path_str(&manifest)])
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
        .entire(&repo.join("sub/dir"), &["write", path_str(&dir)])
        .ok()
        .trimmed()
        .to_string();
    let wt = env.path().join("wt");
    env.git(&repo, &["worktree", "add", "-q", path_str(&wt)]);
    assert_eq!(
        env.entire(&wt, &["show", &id, "0/full.jsonl"]).ok().stdout,
        "s\n"
    );
    let id2 = env
        .entire(&wt, &["write", path_str(&dir)])
        .ok()
        .trimmed()
        .to_string();
    let queued = queued(&env, &repo);
    assert_eq!(
        queued.len(),
        2,
        "worktrees share the common-dir queue: {queued:?}"
    );
    assert!(queued[1].contains(&id2));
    let bare = env.path().join("bare.git");
    env.git(
        env.path(),
        &["clone", "-q", "--bare", path_str(&repo), path_str(&bare)],
    );
    env.git(
        &repo,
        &["push", "-q", path_str(&bare), "refs/entire/*:refs/entire/*"],
    );
    assert_eq!(
        env.entire(&bare, &["show", &id, "0/full.jsonl"])
            .ok()
            .stdout,
        "s\n"
    );
}
