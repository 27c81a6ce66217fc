//! The v2 layout end to end: dual-write next to the primary store, v2 as the primary, slots shared by `/main`
//! and `/full/current`, compact transcripts, the slot-0 guard, unchanged writes, mirror failures, reads, fsck.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::env::TestEnv;
use crate::fixtures::{path_str, queued, ref_value};

pub const MAIN: &str = "refs/entire/checkpoints/v2/main";
pub const CURRENT: &str = "refs/entire/checkpoints/v2/full/current";

/// Write `.entire/settings.json` with `body`.
pub fn settings(repo: &Path, body: &str) {
    std::fs::create_dir_all(repo.join(".entire")).expect("mkdir .entire");
    std::fs::write(repo.join(".entire/settings.json"), body).expect("write settings");
}

/// A Claude Code style raw transcript with `turns` user/assistant turns, tagged with `tag`.
pub fn claude_transcript(tag: &str, turns: usize) -> String {
    let mut t = String::new();
    for i in 0..turns {
        t.push_str(&format!(
            "{{\"type\":\"user\",\"timestamp\":\"2026-01-01T00:0{i}:00Z\",\"message\":{{\"role\":\"user\",\"content\":\"prompt {i} of {tag}\"}}}}\n"
        ));
        t.push_str(&format!(
            "{{\"type\":\"assistant\",\"message\":{{\"id\":\"msg_{i}\",\"content\":[{{\"type\":\"thinking\",\"thinking\":\"secret {tag}\"}},{{\"type\":\"text\",\"text\":\"answer {i} of {tag}\"}}]}}}}\n"
        ));
    }
    t
}

/// A session directory for session `sid` with a Claude Code transcript.
pub fn claude_session(env: &TestEnv, name: &str, sid: &str, transcript: &str) -> PathBuf {
    let dir = env.path().join("sessions").join(name);
    std::fs::create_dir_all(&dir).expect("mkdir session");
    let meta = format!(
        r#"{{"session_id": "{sid}", "strategy": "manual-commit", "agent": "Claude Code", "checkpoints_count": 1, "files_touched": ["src/{name}.rs"]}}"#
    );
    std::fs::write(dir.join("metadata.json"), meta).expect("metadata");
    std::fs::write(dir.join("full.jsonl"), transcript).expect("transcript");
    std::fs::write(dir.join("prompt.txt"), format!("prompt of {name}")).expect("prompt");
    dir
}

fn cat(env: &TestEnv, repo: &Path, spec: &str) -> String {
    env.git(repo, &["cat-file", "-p", spec])
}

fn commits(env: &TestEnv, repo: &Path, r: &str) -> usize {
    env.git(repo, &["rev-list", "--count", r])
        .parse()
        .expect("count")
}

fn write(env: &TestEnv, repo: &Path, args: &[&str]) -> String {
    let mut all = vec!["write"];
    all.extend_from_slice(args);
    env.entire(repo, &all).ok().trimmed().to_string()
}

#[test]
fn dual_write_places_main_and_full_in_the_same_slots() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(
        &repo,
        r#"{"strategy_options": {"checkpoint_store": "refs-v1-mirror", "checkpoints_v2": true}}"#,
    );
    let t0 = claude_transcript("alpha", 2);
    let s0 = claude_session(&env, "a", "sess-a", &t0);
    let id = write(&env, &repo, &[path_str(&s0)]);
    assert_eq!(id.len(), 26, "refs primary mints ULIDs: {id}");
    let cp = format!("{}/{}", &id[..2], &id[2..]);

    let main_files = env.git(&repo, &["ls-tree", "-r", "--name-only", MAIN]);
    let want_main: Vec<String> = [
        "0/metadata.json",
        "0/prompt.txt",
        "0/transcript.jsonl",
        "0/transcript_hash.txt",
        "metadata.json",
    ]
    .iter()
    .map(|f| format!("{cp}/{f}"))
    .collect();
    assert_eq!(
        main_files.lines().collect::<Vec<_>>(),
        want_main,
        "no raw transcript on /main"
    );
    let full_files = env.git(&repo, &["ls-tree", "-r", "--name-only", CURRENT]);
    assert_eq!(
        full_files.lines().collect::<Vec<_>>(),
        [
            format!("{cp}/0/raw_transcript"),
            format!("{cp}/0/raw_transcript_hash.txt")
        ]
    );
    assert_eq!(
        cat(&env, &repo, &format!("{CURRENT}:{cp}/0/raw_transcript")),
        t0.trim_end()
    );
    let hash = cat(
        &env,
        &repo,
        &format!("{CURRENT}:{cp}/0/raw_transcript_hash.txt"),
    );
    let want_hash = env.git_stdin(&repo, &["hash-object", "--stdin"], &t0); // sanity: blob is readable
    assert!(
        hash.starts_with("sha256:") && hash.len() == 71 && !want_hash.is_empty(),
        "{hash}"
    );
    assert_eq!(
        env.git(&repo, &["log", "-1", "--format=%B", MAIN]),
        format!("Checkpoint: {id}")
    );

    // The compact transcript: prompts and answers kept, thinking dropped, the v2 header on each line.
    let compact = cat(&env, &repo, &format!("{MAIN}:{cp}/0/transcript.jsonl"));
    assert_eq!(compact.lines().count(), 4, "{compact}");
    for want in [
        "prompt 0 of alpha",
        "answer 1 of alpha",
        r#"{"v":1,"agent":"Claude Code","cli_version":"#,
    ] {
        assert!(compact.contains(want), "{want} missing from {compact}");
    }
    assert!(!compact.contains("secret"), "thinking survived: {compact}");
    let root: Value =
        serde_json::from_str(&cat(&env, &repo, &format!("{MAIN}:{cp}/metadata.json")))
            .expect("json");
    assert_eq!(
        root["sessions"][0],
        serde_json::json!({"metadata": format!("/{cp}/0/metadata.json"), "transcript": format!("/{cp}/0/transcript.jsonl"),
                           "context": "", "content_hash": format!("/{cp}/0/transcript_hash.txt"), "prompt": format!("/{cp}/0/prompt.txt")})
    );
    let q = queued(&env, &repo);
    for r in [MAIN, CURRENT] {
        assert!(q.iter().any(|l| l == r), "{r} queued: {q:?}");
    }

    // A second session takes slot 1 on both refs; the summary is re-aggregated.
    let s1 = claude_session(&env, "b", "sess-b", &claude_transcript("beta", 1));
    write(&env, &repo, &["--id", &id, path_str(&s1)]);
    let sid1 = cat(&env, &repo, &format!("{MAIN}:{cp}/1/metadata.json"));
    assert!(sid1.contains("\"session_id\": \"sess-b\""), "{sid1}");
    assert!(cat(&env, &repo, &format!("{CURRENT}:{cp}/1/raw_transcript")).contains("beta"));
    let root: Value =
        serde_json::from_str(&cat(&env, &repo, &format!("{MAIN}:{cp}/metadata.json")))
            .expect("json");
    assert_eq!(root["checkpoints_count"], 2);
    assert_eq!(
        root["files_touched"],
        serde_json::json!(["src/a.rs", "src/b.rs"])
    );

    // Rewriting an unchanged session writes no commit on either ref; a changed transcript one on each.
    let (m, f) = (commits(&env, &repo, MAIN), commits(&env, &repo, CURRENT));
    write(&env, &repo, &["--id", &id, path_str(&s0)]);
    assert_eq!(
        (commits(&env, &repo, MAIN), commits(&env, &repo, CURRENT)),
        (m, f),
        "unchanged = no commit"
    );
    std::fs::write(s0.join("full.jsonl"), claude_transcript("alpha", 3)).expect("grow transcript");
    write(&env, &repo, &["--id", &id, path_str(&s0)]);
    assert_eq!(
        (commits(&env, &repo, MAIN), commits(&env, &repo, CURRENT)),
        (m + 1, f + 1)
    );
    assert!(
        cat(&env, &repo, &format!("{CURRENT}:{cp}/0/raw_transcript")).contains("prompt 2 of alpha")
    );
    env.entire(&repo, &["fsck"]).ok();
}

#[test]
fn checkpoints_version_2_makes_v2_the_only_store_and_reads_come_from_it() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(&repo, r#"{"strategy_options": {"checkpoints_version": 2}}"#);
    let t = claude_transcript("solo", 1);
    let s = claude_session(&env, "solo", "sess-solo", &t);
    let id = write(&env, &repo, &[path_str(&s)]);
    assert_eq!(id.len(), 12, "v2 primary mints 12-hex IDs: {id}");
    let all = env.git(&repo, &["for-each-ref", "--format=%(refname)"]);
    assert!(!all.contains("refs/heads/entire/checkpoints/v1"), "{all}");
    assert_eq!(
        all.lines()
            .filter(|l| l.starts_with("refs/entire/"))
            .collect::<Vec<_>>(),
        [CURRENT, MAIN],
        "only the v2 refs"
    );
    let shown = env
        .entire(&repo, &["show", "--no-fetch", &id, "0/raw_transcript"])
        .ok();
    assert_eq!(shown.stdout, t, "raw transcript reassembled from /full");
    let alias = env
        .entire(&repo, &["show", "--no-fetch", &id, "0/full.jsonl"])
        .ok();
    assert_eq!(alias.stdout, t);
    let json: Value = serde_json::from_str(
        &env.entire(
            &repo,
            &["show", "--no-fetch", "--json", &id, "0/metadata.json"],
        )
        .ok()
        .stdout,
    )
    .expect("json");
    assert_eq!(json["store"], "v2");
    assert_eq!(json["ref"], MAIN);
    assert_eq!(json["content"]["checkpoint_transcript_start"], 0);
    let status: Value =
        serde_json::from_str(&env.entire(&repo, &["status", "--json"]).ok().stdout).expect("json");
    assert_eq!(status["mode"], "v2");
    assert_eq!(status["v2"]["main_checkpoints"], 1);
    assert_eq!(status["v2"]["full_current_checkpoints"], 1);

    // An empty transcript writes /main only.
    let empty = claude_session(&env, "empty", "sess-empty", "");
    let f = commits(&env, &repo, CURRENT);
    write(&env, &repo, &["--id", &id, path_str(&empty)]);
    assert_eq!(commits(&env, &repo, CURRENT), f, "/full untouched");
    let listed = env.git(
        &repo,
        &[
            "ls-tree",
            "--name-only",
            &format!("{MAIN}:{}/{}", &id[..2], &id[2..]),
        ],
    );
    assert!(listed.lines().any(|l| l == "1"), "{listed}");
    env.entire(&repo, &["show", "--no-fetch", &id, "1/raw_transcript"])
        .code(1);
}

#[test]
fn v2_is_the_read_fallback_for_ids_found_nowhere_else() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(&repo, r#"{"strategy_options": {"checkpoints_version": 2}}"#);
    let s = claude_session(&env, "x", "sess-x", &claude_transcript("x", 1));
    let id = write(&env, &repo, &[path_str(&s)]);
    settings(
        &repo,
        r#"{"strategy_options": {"checkpoint_store": "refs-v1"}}"#,
    );
    let shown = env
        .entire(&repo, &["show", "--no-fetch", &id, "0/prompt.txt"])
        .ok();
    assert_eq!(shown.stdout, "prompt of x");
}

#[test]
fn the_slot_zero_guard_refuses_to_hand_slot_zero_to_another_session() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(&repo, r#"{"strategy_options": {"checkpoints_version": 2}}"#);
    let a = claude_session(&env, "a", "sess-a", &claude_transcript("a", 1));
    let id = write(&env, &repo, &[path_str(&a)]);
    let cp = format!("{}/{}", &id[..2], &id[2..]);
    // Make /main inconsistent the way upstream's guard describes: the summary is gone, slot 0 still exists.
    env.git(&repo, &["read-tree", MAIN]);
    env.git(
        &repo,
        &["rm", "-q", "--cached", &format!("{cp}/metadata.json")],
    );
    let tree = env.git(&repo, &["write-tree"]);
    let tip = env.git(&repo, &["rev-parse", MAIN]);
    let broken = env.git(&repo, &["commit-tree", &tree, "-p", &tip, "-m", "break"]);
    env.git(&repo, &["update-ref", MAIN, &broken]);
    env.git(&repo, &["read-tree", "HEAD"]);

    let b = claude_session(&env, "b", "sess-b", &claude_transcript("b", 1));
    let err = env
        .entire(&repo, &["write", "--id", &id, path_str(&b)])
        .code(1);
    assert!(
        err.stderr.contains("refusing to overwrite session 0") && err.stderr.contains("\"sess-a\""),
        "{}",
        err.stderr
    );
    assert_eq!(
        ref_value(&env, &repo, MAIN).as_deref(),
        Some(broken.as_str()),
        "nothing written"
    );

    // As a mirror the same failure is a warning and the primary's write stands.
    settings(
        &repo,
        r#"{"strategy_options": {"checkpoint_store": "refs-v1", "checkpoints_v2": true}}"#,
    );
    let run = env
        .entire(&repo, &["write", "--id", &id, path_str(&b)])
        .ok();
    assert!(
        run.stderr
            .contains("warning: mirror write to the v2 layout"),
        "{}",
        run.stderr
    );
    env.entire(&repo, &["show", "--no-fetch", &id, "0/full.jsonl"])
        .ok();
}

#[test]
fn a_failing_v2_write_is_a_warning_as_mirror_and_an_error_as_primary() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    // A stale lock on v2/main makes every update of it fail (git's lock protocol: we never break the lock).
    let lock = repo.join(".git/refs/entire/checkpoints/v2/main.lock");
    std::fs::create_dir_all(lock.parent().expect("parent")).expect("mkdir");
    std::fs::write(&lock, "").expect("lock");
    let s = claude_session(&env, "s", "sess", &claude_transcript("s", 1));
    settings(
        &repo,
        r#"{"strategy_options": {"checkpoint_store": "refs-v1", "checkpoints_v2": true}}"#,
    );
    let run = env.entire(&repo, &["write", path_str(&s)]).ok();
    assert!(
        run.stderr
            .contains("warning: mirror write to the v2 layout"),
        "{}",
        run.stderr
    );
    let id = run.trimmed().to_string();
    env.entire(&repo, &["show", "--no-fetch", &id]).ok();

    settings(&repo, r#"{"strategy_options": {"checkpoints_version": 2}}"#);
    let run = env.entire(&repo, &["write", path_str(&s)]);
    assert_ne!(
        run.status, 0,
        "v2 primary failure fails the write: {}",
        run.stderr
    );
    assert!(run.stderr.contains("v2/main"), "{}", run.stderr);
}

#[test]
fn contradictory_settings_are_an_error_naming_the_file() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(
        &repo,
        r#"{"strategy_options": {"checkpoints_version": 2, "checkpoint_store": "refs-v1-mirror"}}"#,
    );
    let s = claude_session(&env, "s", "sess", &claude_transcript("s", 1));
    let err = env.entire(&repo, &["write", path_str(&s)]).code(1);
    assert!(
        err.stderr.contains(".entire/settings.json")
            && err.stderr.contains("checkpoints_version 2"),
        "{}",
        err.stderr
    );
    assert!(ref_value(&env, &repo, MAIN).is_none(), "nothing written");
}

#[test]
fn fsck_checks_the_v2_invariants() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(&repo, r#"{"strategy_options": {"checkpoints_version": 2}}"#);
    let s = claude_session(&env, "s", "sess", &claude_transcript("s", 2));
    let id = write(&env, &repo, &[path_str(&s)]);
    let cp = format!("{}/{}", &id[..2], &id[2..]);
    env.entire(&repo, &["fsck"]).ok();
    // Tamper: a wrong raw hash and a slot on /full that /main does not have.
    env.git(&repo, &["read-tree", CURRENT]);
    let bad = env.git_stdin(&repo, &["hash-object", "-w", "--stdin"], "sha256:0000");
    let raw = env.git(
        &repo,
        &["rev-parse", &format!("{CURRENT}:{cp}/0/raw_transcript")],
    );
    env.git_stdin(
        &repo,
        &["update-index", "--index-info"],
        &format!(
            "100644 {bad}\t{cp}/0/raw_transcript_hash.txt\n100644 {raw}\t{cp}/5/raw_transcript\n"
        ),
    );
    let tree = env.git(&repo, &["write-tree"]);
    let tip = env.git(&repo, &["rev-parse", CURRENT]);
    let c = env.git(&repo, &["commit-tree", &tree, "-p", &tip, "-m", "tamper"]);
    env.git(&repo, &["update-ref", CURRENT, &c]);
    env.git(&repo, &["read-tree", "HEAD"]);
    let out = env.entire(&repo, &["fsck"]).code(1);
    for want in [
        "0/raw_transcript_hash.txt does not match",
        "slot 5 has no session on v2/main",
        "5/raw_transcript_hash.txt is missing",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
}

#[test]
fn task_trees_go_under_the_owning_session_on_full_only() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(&repo, r#"{"strategy_options": {"checkpoints_version": 2}}"#);
    let s = claude_session(&env, "t", "sess-t", &claude_transcript("t", 1));
    std::fs::create_dir_all(s.join("tasks/toolu_01")).expect("mkdir tasks");
    std::fs::write(s.join("tasks/toolu_01/agent-a1.jsonl"), "{\"sub\":1}\n").expect("task file");
    let id = write(&env, &repo, &[path_str(&s)]);
    let cp = format!("{}/{}", &id[..2], &id[2..]);
    let full = env.git(&repo, &["ls-tree", "-r", "--name-only", CURRENT]);
    assert!(
        full.lines()
            .any(|l| l == format!("{cp}/0/tasks/toolu_01/agent-a1.jsonl")),
        "{full}"
    );
    let main = env.git(&repo, &["ls-tree", "-r", "--name-only", MAIN]);
    assert!(!main.contains("tasks/"), "{main}");
    let shown = env
        .entire(
            &repo,
            &["show", "--no-fetch", &id, "0/tasks/toolu_01/agent-a1.jsonl"],
        )
        .ok();
    assert_eq!(shown.stdout, "{\"sub\":1}\n");
    // A rewrite without task files keeps the stored tree; one with other task files replaces it.
    let f = commits(&env, &repo, CURRENT);
    std::fs::remove_dir_all(s.join("tasks")).expect("rm tasks");
    write(&env, &repo, &["--id", &id, path_str(&s)]);
    assert_eq!(
        commits(&env, &repo, CURRENT),
        f,
        "tasks kept, nothing changed"
    );
    std::fs::create_dir_all(s.join("tasks/toolu_02")).expect("mkdir tasks");
    std::fs::write(s.join("tasks/toolu_02/task.json"), "{}\n").expect("task file");
    write(&env, &repo, &["--id", &id, path_str(&s)]);
    let full = env.git(&repo, &["ls-tree", "-r", "--name-only", CURRENT]);
    assert!(
        full.contains("toolu_02/task.json") && !full.contains("toolu_01"),
        "{full}"
    );
}
