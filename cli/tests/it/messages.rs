//! Human-facing output pinned by inline snapshots: errors with their hints, summaries and `status`. A change of
//! wording shows up here as a reviewed diff (`cargo insta review`, or edit the snapshot by hand).

use std::path::Path;

use crate::env::{Run, TestEnv};

/// stdout and stderr of a run with the test's temporary directory replaced by `[TMP]`, and its exit code.
fn shown(env: &TestEnv, r: &Run) -> String {
    let tmp = env.path().to_str().expect("utf-8 path");
    let text = format!("exit {}\n{}{}", r.status, r.stdout, r.stderr);
    text.replace(tmp, "[TMP]")
}

fn entire(env: &TestEnv, repo: &Path, args: &[&str]) -> String {
    shown(env, &env.entire(repo, args))
}

#[test]
fn usage_and_input_errors() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    insta::assert_snapshot!(entire(&env, &repo, &["show", "zz"]), @r#"
    exit 1
    error: invalid checkpoint ID "zz": expected 12 lowercase hex characters or a 26-character ULID
    "#);
    insta::assert_snapshot!(entire(&env, &repo, &["write"]), @r"
    exit 2
    error: nothing to write: give at least one session directory or --manifest
    ");
    insta::assert_snapshot!(entire(&env, &repo, &["write", "missing-dir"]), @r"
    exit 1
    error: cannot read missing-dir/metadata.json: No such file or directory (os error 2)
    ");
}

#[test]
fn a_missing_checkpoint_says_whether_a_remote_was_asked() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    insta::assert_snapshot!(entire(&env, &repo, &["show", "0123456789ab"]), @r"
    exit 1
    error: checkpoint 0123456789ab not found locally, and there is no remote to fetch it from (looked in refs/entire/checkpoints/ab/0123456789ab, refs/entire/checkpoints/AB/0123456789ab, refs/heads/entire/checkpoints/v1)
    ");
    let remote = env.bare("remote.git");
    env.git(
        &repo,
        &["remote", "add", "origin", remote.to_str().expect("utf-8")],
    );
    insta::assert_snapshot!(entire(&env, &repo, &["show", "0123456789ab"]), @r"
    exit 1
    error: checkpoint 0123456789ab not found locally or on the remote (looked in refs/entire/checkpoints/ab/0123456789ab, refs/entire/checkpoints/AB/0123456789ab, refs/heads/entire/checkpoints/v1)
    ");
}

#[test]
fn settings_errors_name_the_file() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    std::fs::create_dir_all(repo.join(".entire")).expect("mkdir");
    std::fs::write(repo.join(".entire/settings.json"), "{bad").expect("write");
    insta::assert_snapshot!(entire(&env, &repo, &["status"]), @r"
    exit 1
    error: [TMP]/r/.entire/settings.json: invalid JSON: key must be a string at line 1 column 2
    ");
}

#[test]
fn remote_errors_carry_a_hint() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    insta::assert_snapshot!(entire(&env, &repo, &["push"]), @r"
    exit 1
    error: no remote to use: no checkpoint remote is configured (entire.remote) and there is no remote named origin
    hint: add a remote, or set one with `git config entire.remote <remote>`
    ");
}

#[test]
fn status_and_summaries() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    insta::assert_snapshot!(entire(&env, &repo, &["status"]), @r"
    exit 0
    mode: v1
    legacy branch: refs/heads/entire/checkpoints/v1 (absent)
    checkpoint refs: 0
    push queue: 0 ref(s)
    ");
    insta::assert_snapshot!(shown(&env, &env.run(&repo, "git", ["entire-migrate"])), @r"
    exit 0
    migrated 0, skipped 0, failed 0
    nothing to migrate: no refs/heads/entire/checkpoints/v1 branch (local or remote-tracking)
    ");
}
