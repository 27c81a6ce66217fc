//! `git entire attach` end to end: every rollout mode, joining an existing checkpoint (local, legacy-only,
//! remote-only, missing), the amend flows (force, no terminal, a real pseudo-terminal, pushed, dirty index,
//! signed), redaction, and hostile transcripts.

use std::path::{Path, PathBuf};

use crate::env::TestEnv;
use crate::fixtures::{path_str, session, set_mode};

/// A real Claude Code transcript (no secrets in it) from the sample data.
fn real_transcript() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude/9b3838281539-0/full.jsonl")
}

const REAL_SESSION: &str = "6da7d497-00e2-460d-a6b4-d280e0314cfd";

/// Checkpoint ID from `Created checkpoint <id>` / `Added to existing checkpoint <id>`.
fn checkpoint_of(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Created checkpoint ")
                .or_else(|| l.trim().strip_prefix("Added to existing checkpoint "))
        })
        .unwrap_or_else(|| panic!("no checkpoint line in:\n{stdout}"))
        .to_string()
}

/// Every ref and its value, to prove that nothing was written.
fn all_refs(env: &TestEnv, repo: &Path) -> String {
    env.git(repo, &["for-each-ref", "--format=%(refname) %(objectname)"])
}

#[test]
fn attach_in_every_rollout_mode_reads_back_byte_for_byte() {
    let env = TestEnv::new();
    let transcript = std::fs::read(real_transcript()).expect("fixture");
    let modes = [
        ("v1", "{}", 12),
        (
            "refs-v1-mirror",
            r#"{"strategy_options": {"checkpoint_store": "refs-v1-mirror"}}"#,
            26,
        ),
        (
            "refs-v1",
            r#"{"strategy_options": {"checkpoint_store": "refs-v1"}}"#,
            26,
        ),
        (
            "v2-dual",
            r#"{"strategy_options": {"checkpoints_v2": true}}"#,
            12,
        ),
        (
            "v2-primary",
            r#"{"strategy_options": {"checkpoints_version": 2}}"#,
            12,
        ),
    ];
    for (mode, settings, id_len) in modes {
        let repo = env.repo(&format!("r-{mode}"));
        std::fs::create_dir_all(repo.join(".entire")).expect("mkdir");
        std::fs::write(repo.join(".entire/settings.json"), settings).expect("settings");
        let run = env
            .entire(
                &repo,
                &["attach", "--no-amend", path_str(&real_transcript())],
            )
            .ok();
        assert!(
            run.stdout
                .contains(&format!("Attached session {REAL_SESSION}")),
            "{}",
            run.stdout
        );
        let id = checkpoint_of(&run.stdout);
        assert_eq!(id.len(), id_len, "{mode}");
        let v2_main = env.run(
            &repo,
            "git",
            [
                "rev-parse",
                "--verify",
                "-q",
                "refs/entire/checkpoints/v2/main",
            ],
        );
        assert_eq!(
            v2_main.status == 0,
            mode.starts_with("v2"),
            "{mode}: v2/main written iff v2 is on"
        );
        if mode.starts_with("v2") {
            let compact = env.git(
                &repo,
                &[
                    "show",
                    &format!(
                        "refs/entire/checkpoints/v2/main:{}/{}/0/transcript.jsonl",
                        &id[..2],
                        &id[2..]
                    ),
                ],
            );
            assert!(
                compact.contains("\"type\":\"user\""),
                "{mode}: compact transcript on /main"
            );
        }
        let shown = env.entire(&repo, &["show", &id, "0/full.jsonl"]).ok();
        assert_eq!(
            shown.stdout_bytes, transcript,
            "{mode:?}: stored byte for byte"
        );
        let meta: serde_json::Value = serde_json::from_str(
            &env.entire(&repo, &["show", &id, "0/metadata.json"])
                .ok()
                .stdout,
        )
        .expect("session metadata");
        assert_eq!(meta["session_id"], REAL_SESSION);
        assert_eq!(meta["agent"], "Claude Code");
        assert_eq!(
            meta["token_usage"]["api_call_count"]
                .as_u64()
                .map(|n| n > 0),
            Some(true)
        );
        let prompt = env.entire(&repo, &["show", &id, "0/prompt.txt"]).ok();
        assert!(
            !prompt.stdout.trim().is_empty(),
            "{mode:?}: first prompt recorded"
        );
    }
}

#[test]
fn the_same_session_twice_writes_nothing_the_second_time() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1"));
    let t = real_transcript();
    let run = env.entire(&repo, &["attach", "--force", path_str(&t)]).ok();
    let id = checkpoint_of(&run.stdout);
    assert!(run.stdout.contains("Amended commit"), "{}", run.stdout);
    let msg = env.git(&repo, &["log", "-1", "--format=%B"]);
    assert!(msg.ends_with(&format!("Entire-Checkpoint: {id}")), "{msg}");
    let before = all_refs(&env, &repo);
    let again = env.entire(&repo, &["attach", "--force", path_str(&t)]).ok();
    assert!(
        again.stdout.contains("already attached"),
        "{}",
        again.stdout
    );
    assert_eq!(all_refs(&env, &repo), before, "nothing written");
    // A changed transcript of the same session replaces its slot instead of adding one.
    let longer = env.path().join("longer.jsonl");
    let mut bytes = std::fs::read(&t).expect("fixture");
    bytes.extend_from_slice(b"{\"type\":\"user\",\"sessionId\":\"6da7d497-00e2-460d-a6b4-d280e0314cfd\",\"message\":{\"role\":\"user\",\"content\":\"one more\"}}\n");
    std::fs::write(&longer, &bytes).expect("write");
    let third = env.entire(&repo, &["attach", path_str(&longer)]).ok();
    assert!(
        third
            .stdout
            .contains(&format!("Added to existing checkpoint {id}")),
        "{}",
        third.stdout
    );
    assert_eq!(
        env.entire(&repo, &["show", &id, "0/full.jsonl"])
            .ok()
            .stdout_bytes,
        bytes
    );
    assert_eq!(
        env.entire(&repo, &["show", &id, "1/metadata.json"]).status,
        1,
        "no second slot"
    );
}

#[test]
fn a_legacy_only_checkpoint_is_carried_whole_into_refs_and_v2() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    let a = session(&env, "a", r#"{"session_id": "sess-a"}"#, b"{\"a\":1}\n");
    let task = a.join("tasks/toolu_01abc");
    std::fs::create_dir_all(&task).expect("mkdir task");
    std::fs::write(
        task.join("task.json"),
        "{\"tool_use_id\":\"toolu_01abc\"}\n",
    )
    .expect("task");
    let b = session(&env, "b", r#"{"session_id": "sess-b"}"#, b"{\"b\":2}\n");
    let id = env
        .entire(&repo, &["write", path_str(&a), path_str(&b)])
        .ok()
        .trimmed()
        .to_string();
    let msg = format!("work\n\nEntire-Checkpoint: {id}");
    env.git(&repo, &["commit", "-q", "--allow-empty", "-m", &msg]);
    std::fs::create_dir_all(repo.join(".entire")).expect("mkdir");
    std::fs::write(
        repo.join(".entire/settings.json"),
        r#"{"strategy_options": {"checkpoint_store": "refs-v1-mirror", "checkpoints_v2": true}}"#,
    )
    .expect("settings");
    let run = env
        .entire(&repo, &["attach", path_str(&real_transcript())])
        .ok();
    assert!(
        run.stdout
            .contains(&format!("Added to existing checkpoint {id}")),
        "{}",
        run.stdout
    );
    let refname = format!("refs/entire/checkpoints/{}/{id}", &id[10..]);
    let files = env.git(&repo, &["ls-tree", "-r", "--name-only", &refname]);
    for f in [
        "0/full.jsonl",
        "tasks/toolu_01abc/task.json",
        "1/full.jsonl",
        "2/full.jsonl",
        "metadata.json",
    ] {
        assert!(
            files.lines().any(|l| l == f),
            "{f} missing from the ref:\n{files}"
        );
    }
    for (slot, sid) in [(0, "sess-a"), (1, "sess-b"), (2, REAL_SESSION)] {
        let m = env
            .entire(&repo, &["show", &id, &format!("{slot}/metadata.json")])
            .ok();
        assert!(m.stdout.contains(sid), "slot {slot}: {}", m.stdout);
    }
    // v2 holds the whole checkpoint too, never just the attached session.
    let dir = format!("{}/{}", &id[..2], &id[2..]);
    let main = env.git(
        &repo,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "refs/entire/checkpoints/v2/main",
            &dir,
        ],
    );
    let full = env.git(
        &repo,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "refs/entire/checkpoints/v2/full/current",
            &dir,
        ],
    );
    for slot in 0..3 {
        assert!(
            main.contains(&format!("{dir}/{slot}/metadata.json")),
            "v2 /main slot {slot}:\n{main}"
        );
        assert!(
            full.contains(&format!("{dir}/{slot}/raw_transcript")),
            "v2 /full slot {slot}:\n{full}"
        );
    }
    assert!(
        full.contains(&format!("{dir}/2/tasks/toolu_01abc/task.json")),
        "task tree on /full:\n{full}"
    );
    let legacy = env.git(
        &repo,
        &["show", &format!("entire/checkpoints/v1:{dir}/1/full.jsonl")],
    );
    let v2_raw = env.git(
        &repo,
        &[
            "show",
            &format!("refs/entire/checkpoints/v2/full/current:{dir}/1/raw_transcript"),
        ],
    );
    assert_eq!(
        v2_raw, legacy,
        "the legacy session's transcript, byte for byte"
    );
}

#[test]
fn a_checkpoint_only_on_the_remote_is_fetched_and_one_nowhere_is_refused() {
    let env = TestEnv::new();
    let remote = env.bare("remote.git");
    let author = env.repo("author");
    set_mode(&author, Some("refs-v1"));
    env.git(&author, &["remote", "add", "origin", path_str(&remote)]);
    let s = session(&env, "s", r#"{"session_id": "teammate"}"#, b"{\"t\":1}\n");
    let id = env
        .entire(&author, &["write", path_str(&s)])
        .ok()
        .trimmed()
        .to_string();
    let msg = format!("feature\n\nEntire-Checkpoint: {id}");
    env.git(&author, &["commit", "-q", "--allow-empty", "-m", &msg]);
    env.git(&author, &["push", "-q", "origin", "main"]);
    env.entire(&author, &["push"]).ok();

    let clone = env.path().join("clone");
    env.git(
        env.path(),
        &["clone", "-q", path_str(&remote), path_str(&clone)],
    );
    set_mode(&clone, Some("refs-v1"));
    let run = env
        .entire(&clone, &["attach", path_str(&real_transcript())])
        .ok();
    assert!(
        run.stdout
            .contains(&format!("Added to existing checkpoint {id}")),
        "{}",
        run.stdout
    );
    let m = env.entire(&clone, &["show", &id, "0/metadata.json"]).ok();
    assert!(
        m.stdout.contains("teammate"),
        "the teammate's session stays: {}",
        m.stdout
    );

    // Nowhere: a trailer naming a checkpoint no one has.
    let lonely = env.repo("lonely");
    env.git(
        &lonely,
        &[
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x\n\nEntire-Checkpoint: 0123456789ab",
        ],
    );
    let before = all_refs(&env, &lonely);
    let run = env
        .entire(&lonely, &["attach", path_str(&real_transcript())])
        .code(1);
    assert!(
        run.stderr.contains("0123456789ab") && run.stderr.contains("overwrite"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("no remote"), "{}", run.stderr);
    assert_eq!(all_refs(&env, &lonely), before, "nothing written");
}

#[test]
fn amend_only_unpushed_head_and_never_the_index() {
    let env = TestEnv::new();
    let remote = env.bare("remote.git");
    let repo = env.repo("r");
    env.git(&repo, &["remote", "add", "origin", path_str(&remote)]);
    let t = real_transcript();
    // Pushed HEAD: never rewritten.
    env.git(&repo, &["push", "-q", "-u", "origin", "main"]);
    let head = env.git(&repo, &["rev-parse", "HEAD"]);
    let run = env.entire(&repo, &["attach", "--force", path_str(&t)]).ok();
    assert!(
        run.stdout.contains("already on origin/main"),
        "{}",
        run.stdout
    );
    assert_eq!(env.git(&repo, &["rev-parse", "HEAD"]), head);
    // A local commit with a dirty index: amended, the staged change stays staged and out of the commit.
    std::fs::write(repo.join("new.txt"), "x\n").expect("write");
    env.git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "local work"],
    );
    std::fs::write(repo.join("staged.txt"), "staged\n").expect("write");
    env.git(&repo, &["add", "staged.txt"]);
    let tree = env.git(&repo, &["rev-parse", "HEAD^{tree}"]);
    let author = env.git(&repo, &["log", "-1", "--format=%an <%ae> %ad"]);
    let run = env
        .entire(&repo, &["attach", "--json", "--force", path_str(&t)])
        .ok();
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert!(doc["amended"]["new"].is_string(), "{doc}");
    assert_eq!(
        env.git(&repo, &["rev-parse", "HEAD^{tree}"]),
        tree,
        "tree untouched"
    );
    assert_eq!(
        env.git(&repo, &["log", "-1", "--format=%an <%ae> %ad"]),
        author
    );
    assert_eq!(
        env.git(&repo, &["diff", "--cached", "--name-only"]),
        "staged.txt"
    );
    // Without a terminal and without --force: the trailer is printed, history untouched.
    let head = env.git(&repo, &["rev-parse", "HEAD"]);
    env.git(&repo, &["commit", "-q", "-m", "more"]);
    let head2 = env.git(&repo, &["rev-parse", "HEAD"]);
    assert_ne!(head, head2);
    let long = env.path().join("other.jsonl");
    std::fs::write(
        &long,
        std::fs::read(&t)
            .expect("fixture")
            .replace_session("other-session"),
    )
    .expect("w");
    let run = env.entire(&repo, &["attach", path_str(&long)]).ok();
    assert!(
        run.stdout.contains("no terminal") && run.stdout.contains("Entire-Checkpoint: "),
        "{}",
        run.stdout
    );
    assert_eq!(env.git(&repo, &["rev-parse", "HEAD"]), head2);
}

trait ReplaceSession {
    fn replace_session(self, to: &str) -> Vec<u8>;
}

impl ReplaceSession for Vec<u8> {
    fn replace_session(self, to: &str) -> Vec<u8> {
        String::from_utf8(self)
            .expect("utf-8")
            .replace(REAL_SESSION, to)
            .into_bytes()
    }
}

#[test]
fn a_terminal_prompt_is_answered_yes_or_no() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    let t = real_transcript();
    for (answer, amended) in [("n\n", false), ("y\n", true)] {
        let sid = format!("tty-{}", answer.trim());
        let file = env.path().join(format!("{sid}.jsonl"));
        std::fs::write(
            &file,
            std::fs::read(&t).expect("fixture").replace_session(&sid),
        )
        .expect("w");
        let head = env.git(&repo, &["rev-parse", "HEAD"]);
        // `script` runs the command on a pseudo-terminal and feeds it our stdin.
        let cmdline = format!("git entire attach {}", path_str(&file));
        let mut cmd = env.cmd("script", &repo);
        cmd.args(["-qec", &cmdline, "/dev/null"])
            .stdin(std::process::Stdio::piped());
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("script runs");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(answer.as_bytes())
            .expect("answer");
        let out = child.wait_with_output().expect("script exits");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Amend it with Entire-Checkpoint"),
            "prompted: {text}"
        );
        let moved = env.git(&repo, &["rev-parse", "HEAD"]) != head;
        assert_eq!(moved, amended, "answer {answer:?}: {text}");
    }
}

#[test]
fn signed_commits_stay_signed_after_the_amend() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    let key = env.path().join("signing-key");
    let keygen = env
        .cmd("ssh-keygen", env.path())
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "test",
            "-f",
            path_str(&key),
        ])
        .status()
        .expect("ssh-keygen runs");
    assert!(keygen.success());
    let allowed = env.path().join("allowed");
    let pubkey = std::fs::read_to_string(key.with_extension("pub")).expect("pub key");
    std::fs::write(&allowed, format!("committer@example.com {pubkey}")).expect("write");
    for (k, v) in [
        ("gpg.format", "ssh"),
        ("user.signingkey", path_str(&key)),
        ("commit.gpgsign", "true"),
        ("gpg.ssh.allowedSignersFile", path_str(&allowed)),
    ] {
        env.git(&repo, &["config", k, v]);
    }
    env.git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "signed work"],
    );
    env.entire(&repo, &["attach", "--force", path_str(&real_transcript())])
        .ok();
    let sig = env.git(&repo, &["log", "-1", "--format=%G?"]);
    assert_eq!(sig, "G", "the amended commit carries a good signature");
}

#[test]
fn secrets_are_redacted_before_anything_is_stored() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    let token = format!("ghp_{}", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8");
    let line = format!(
        "{{\"type\":\"user\",\"sessionId\":\"sec-1\",\"timestamp\":\"2026-01-01T00:00:00Z\",\"message\":{{\"role\":\"user\",\"content\":\"use {token} please\"}}}}\n"
    );
    let file = env.path().join("sec-1.jsonl");
    std::fs::write(&file, &line).expect("write");
    let run = env
        .entire(&repo, &["attach", "--no-amend", path_str(&file)])
        .ok();
    let id = checkpoint_of(&run.stdout);
    let stored = env
        .entire(&repo, &["show", &id, "0/full.jsonl"])
        .ok()
        .stdout;
    assert!(!stored.contains(&token), "{stored}");
    assert!(stored.contains("REDACTED"), "{stored}");
    let prompt = env
        .entire(&repo, &["show", &id, "0/prompt.txt"])
        .ok()
        .stdout;
    assert!(!prompt.contains(&token), "{prompt}");
    let hash = env
        .entire(&repo, &["show", &id, "0/content_hash.txt"])
        .ok()
        .stdout;
    use sha2::Digest;
    let want = format!("sha256:{:x}", sha2::Sha256::digest(stored.as_bytes()));
    assert_eq!(hash, want, "the hash covers the redacted bytes");
    for r in env
        .git(&repo, &["for-each-ref", "--format=%(refname)"])
        .lines()
    {
        let grep = env.run(&repo, "git", ["grep", "-q", "-F", token.as_str(), r]);
        assert_eq!(grep.status, 1, "{r} holds the token");
    }
}

#[test]
fn hostile_transcripts_are_refused_and_nothing_is_written() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    let before = all_refs(&env, &repo);
    let not_jsonl = env.path().join("a.jsonl");
    std::fs::write(&not_jsonl, "hello\nworld\n").expect("write");
    let nul = env.path().join("b.jsonl");
    std::fs::write(&nul, b"{\"type\":\"user\"}\n\0\n").expect("write");
    let huge = env.path().join("c.jsonl");
    std::fs::File::create(&huge)
        .expect("create")
        .set_len(100 << 20)
        .expect("sparse 100 MB");
    let t = real_transcript();
    let cases: [(&[&str], &str); 5] = [
        (&["attach", path_str(&not_jsonl)], "not JSONL"),
        (&["attach", path_str(&nul)], "NUL"),
        (&["attach", path_str(&huge)], "bytes"),
        (
            &["attach", "--session-id", "a/../b", path_str(&t)],
            "invalid session ID",
        ),
        (&["attach", "missing.jsonl"], "missing.jsonl"),
    ];
    for (args, needle) in cases {
        let run = env.entire(&repo, args).code(1);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    assert_eq!(all_refs(&env, &repo), before, "nothing written");
}
