//! Shared refs travel with the push (issue #13): the legacy branch in `refs-v1-mirror` mode goes out in the
//! same push as the user's refs and the queued checkpoints, fast-forward only, behind the empty-remote guard;
//! a shared-ref problem is one stderr line and never touches the user's result.

use std::path::Path;

use crate::env::TestEnv;
use crate::fixtures::{path_str, ref_value};
use crate::transports::{Kind, Served};
use crate::v2_write::{claude_session, claude_transcript, settings};

const LEGACY: &str = "refs/heads/entire/checkpoints/v1";
const MAIN: &str = "refs/entire/checkpoints/v2/main";
const MIRROR_V2: &str =
    r#"{"strategy_options": {"checkpoint_store": "refs-v1-mirror", "checkpoints_v2": true}}"#;

fn write_one(env: &TestEnv, repo: &Path, tag: &str) {
    let s = claude_session(env, tag, &format!("sess-{tag}"), &claude_transcript(tag, 1));
    env.entire(repo, &["write", path_str(&s)]).ok();
}

fn legacy_travels_in_the_one_push(kind: Kind) {
    let s = Served::new(kind);
    let env = &s.env;
    let local = s.clone_local("local");
    settings(&local, MIRROR_V2);
    write_one(env, &local, "a");
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    let count = || s.connections().or_else(|| s.push_connections());
    let before = count();
    let out = env.run(&local, "git", ["push", "origin", "main"]).ok();
    if let Some(before) = before {
        assert_eq!(count(), Some(before + 1), "one connection\n{}", s.log());
    }
    let server = s.path("server.git");
    for r in ["refs/heads/main", LEGACY, MAIN] {
        assert!(ref_value(env, &local, r).is_some(), "{r} written locally");
        assert_eq!(
            ref_value(env, &server, r),
            ref_value(env, &local, r),
            "{r} landed\n{}",
            out.stderr
        );
    }
    assert!(!out.stderr.contains("was not pushed"), "{}", out.stderr);
    let status = env.entire(&local, &["status"]).ok();
    assert!(
        status.stdout.contains("shared refs on origin"),
        "{}",
        status.stdout
    );
}

#[test]
fn legacy_branch_and_v2_travel_with_the_push_over_file() {
    legacy_travels_in_the_one_push(Kind::File);
}

#[test]
fn legacy_branch_and_v2_travel_with_the_push_over_git_daemon() {
    legacy_travels_in_the_one_push(Kind::Daemon);
}

#[test]
fn a_diverged_legacy_branch_is_merged_and_the_user_push_lands() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    let other = s.clone_local("other");
    settings(&local, MIRROR_V2);
    settings(&other, MIRROR_V2);
    write_one(env, &other, "b");
    env.git(&other, &["commit", "-q", "--allow-empty", "-m", "other"]);
    env.git(&other, &["push", "-q", "origin", "main"]);
    let remote_legacy = ref_value(env, &server, LEGACY).expect("other's legacy branch landed");
    write_one(env, &local, "a");
    env.git(&local, &["pull", "-q", "--rebase", "origin", "main"]);
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    let out = env.run(&local, "git", ["push", "origin", "main"]).ok();
    assert_eq!(
        ref_value(env, &server, "refs/heads/main"),
        ref_value(env, &local, "refs/heads/main"),
        "the user's push landed"
    );
    let merged = ref_value(env, &server, LEGACY).expect("legacy branch");
    assert_eq!(
        Some(&merged),
        ref_value(env, &local, LEGACY).as_ref(),
        "local and remote agree"
    );
    assert!(
        env.run(
            &server,
            "git",
            ["merge-base", "--is-ancestor", &remote_legacy, &merged]
        )
        .status
            == 0,
        "never forced"
    );
    // Both checkpoints are on the branch: the local one was replayed onto the remote tip.
    let log = env.git(&server, &["log", "--format=%s", &merged]);
    assert_eq!(log.matches("Checkpoint: ").count(), 2, "{log}");
    assert!(!out.stderr.contains("not pushed"), "{}", out.stderr);
}

#[test]
fn a_refused_legacy_branch_is_one_line_and_the_user_push_lands() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    settings(&local, MIRROR_V2);
    s.hook(
        "server.git",
        "update",
        &format!("test \"$1\" != {LEGACY} || {{ echo no checkpoints here >&2; exit 1; }}"),
    );
    write_one(env, &local, "a");
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    let out = env.run(&local, "git", ["push", "origin", "main"]).ok();
    assert_eq!(
        ref_value(env, &server, "refs/heads/main"),
        ref_value(env, &local, "refs/heads/main"),
        "the user's push landed"
    );
    assert_eq!(ref_value(env, &server, LEGACY), None, "refused");
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("entire:") && l.contains(LEGACY))
        .collect();
    assert_eq!(lines.len(), 1, "one line: {}", out.stderr);
    assert!(
        lines[0].contains("not pushed (hook declined)"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_legacy_branch_is_never_created_on_a_remote_without_a_user_branch() {
    let env = TestEnv::new();
    let server = env.path().join("empty.git");
    env.init_bare(&server);
    let local = env.repo("local");
    settings(&local, MIRROR_V2);
    let url = format!("entire::file://{}", server.display());
    env.git(&local, &["remote", "add", "origin", &url]);
    write_one(&env, &local, "a");
    assert!(ref_value(&env, &local, LEGACY).is_some());
    // Checkpoints only: the remote has no branch of the user's, the legacy branch waits.
    env.entire(&local, &["push"]).ok();
    assert_eq!(ref_value(&env, &server, LEGACY), None, "guarded");
    assert!(ref_value(&env, &server, MAIN).is_some(), "v2 refs went");
    // The user's first branch lands, then the legacy branch follows it.
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "first"]);
    env.run(&local, "git", ["push", "origin", "HEAD:refs/heads/main"])
        .ok();
    assert!(ref_value(&env, &server, "refs/heads/main").is_some());
    assert_eq!(
        ref_value(&env, &server, LEGACY),
        ref_value(&env, &local, LEGACY),
        "follows the first branch"
    );
}
