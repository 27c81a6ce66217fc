//! Pushing through `git-remote-entire`: the user's refs and the queued checkpoints travel in ONE push, the
//! user's result is exactly git's, and checkpoint problems only keep checkpoints queued.

use std::path::Path;

use crate::env::TestEnv;
use crate::fixtures::{
    checkpoint, cp_ref, enqueue, hex_id, queued, ref_value, refs, write_checkpoint,
};
use crate::transports::{Kind, Served};

pub(crate) const STAGING: &str = "refs/entire/push-queue/";

pub(crate) fn no_staging_refs(env: &TestEnv, repo: &Path) {
    assert!(
        refs(env, repo, STAGING).is_empty(),
        "staging refs left behind"
    );
}

fn user_ref_and_checkpoints_in_one_push(kind: Kind) {
    let s = Served::new(kind);
    let env = &s.env;
    let local = s.clone_local("local");
    let ids: Vec<String> = (1..=3).map(hex_id).collect();
    let values: Vec<String> = ids.iter().map(|id| checkpoint(env, &local, id)).collect();
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    // One connection in all: the listing git asks for and the push share it (HTTP: one receive-pack POST).
    let count = || s.connections().or_else(|| s.push_connections());
    let before = count().expect("server log");
    let out = env.run(&local, "git", ["push", "origin", "main"]).ok();
    assert_eq!(
        count(),
        Some(before + 1),
        "exactly one connection\n{}",
        s.log()
    );
    assert!(
        out.stderr.contains("entire: pushed 3 checkpoint(s)"),
        "{}",
        out.stderr
    );
    let server = s.path("server.git");
    assert_eq!(
        ref_value(env, &server, "refs/heads/main"),
        ref_value(env, &local, "refs/heads/main")
    );
    for (id, v) in ids.iter().zip(&values) {
        assert_eq!(
            ref_value(env, &server, &cp_ref(id)).as_ref(),
            Some(v),
            "{id} landed"
        );
    }
    assert!(
        queued(env, &local).is_empty(),
        "landed checkpoints are dequeued"
    );
    no_staging_refs(env, &local);
}

#[test]
fn one_push_over_git_daemon() {
    user_ref_and_checkpoints_in_one_push(Kind::Daemon);
}

#[test]
fn one_push_over_http() {
    user_ref_and_checkpoints_in_one_push(Kind::Http);
}

#[test]
fn one_push_over_ssh() {
    user_ref_and_checkpoints_in_one_push(Kind::Ssh);
}

#[test]
fn one_push_over_real_sshd() {
    user_ref_and_checkpoints_in_one_push(Kind::Sshd);
}

/// A checkpoint ref the remote holds as something that is not a checkpoint commit (nothing to merge by
/// session) and one a hook refuses both stay queued with their reason; the push itself succeeds. (A checkpoint
/// both sides wrote is merged instead: `shared_recover`.)
#[test]
fn unmergeable_and_hook_rejected_checkpoints_stay_queued_without_failing_the_push() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    // The server already holds checkpoint 1's ref at a commit that is no checkpoint: never forced, never
    // merged, stays queued.
    let diverged = hex_id(1);
    let other = env.repo("other");
    let blob = env.git_stdin(
        &other,
        &["hash-object", "-w", "--stdin"],
        "not a checkpoint\n",
    );
    let tree = env.git_stdin(
        &other,
        &["mktree"],
        &format!("100644 blob {blob}\tREADME\n"),
    );
    let commit = env.git(&other, &["commit-tree", &tree, "-m", "not a checkpoint"]);
    env.git(&other, &["update-ref", &cp_ref(&diverged), &commit]);
    env.git(
        &other,
        &[
            "push",
            "-q",
            server.to_str().expect("utf-8"),
            &cp_ref(&diverged),
        ],
    );
    let remote_value = ref_value(env, &server, &cp_ref(&diverged));
    checkpoint(env, &local, &diverged);
    // An update hook refuses checkpoint 2 only.
    let refused = hex_id(2);
    s.hook(
        "server.git",
        "update",
        &format!(
            "case \"$1\" in */{refused}) echo \"no checkpoint $1\" >&2; exit 1;; esac; exit 0"
        ),
    );
    checkpoint(env, &local, &refused);
    let good = hex_id(3);
    let good_value = checkpoint(env, &local, &good);
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    let out = env.run(&local, "git", ["push", "origin", "main"]).ok();
    assert!(out.stderr.contains("2 stay queued"), "{}", out.stderr);
    let reason: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains(&cp_ref(&diverged)))
        .collect();
    assert_eq!(
        reason.len(),
        1,
        "one line for the unmergeable ref: {}",
        out.stderr
    );
    assert!(
        reason[0].contains("the remote") && reason[0].contains("is not a checkpoint commit"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("[rejected]"),
        "git reports only the user's refs: {}",
        out.stderr
    );
    assert_eq!(
        ref_value(env, &server, "refs/heads/main"),
        ref_value(env, &local, "refs/heads/main")
    );
    assert_eq!(
        ref_value(env, &server, &cp_ref(&diverged)),
        remote_value,
        "never forced"
    );
    assert_eq!(ref_value(env, &server, &cp_ref(&refused)), None);
    assert_eq!(ref_value(env, &server, &cp_ref(&good)), Some(good_value));
    assert_eq!(
        queued(env, &local),
        vec![cp_ref(&diverged), cp_ref(&refused)]
    );
    no_staging_refs(env, &local);
}

fn pre_receive_refusing_checkpoints(kind: Kind) {
    let s = Served::new(kind);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    s.hook(
        "server.git",
        "pre-receive",
        "if grep -q ' refs/entire/'; then echo 'checkpoint refs are not allowed here' >&2; exit 1; fi",
    );
    let id = hex_id(7);
    checkpoint(env, &local, &id);
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    let out = env.run(&local, "git", ["push", "origin", "main"]).ok();
    assert!(
        out.stderr
            .contains("rejected the push with checkpoint refs"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("1 stay queued"), "{}", out.stderr);
    assert_eq!(
        ref_value(env, &server, "refs/heads/main"),
        ref_value(env, &local, "refs/heads/main")
    );
    assert_eq!(ref_value(env, &server, &cp_ref(&id)), None);
    assert_eq!(queued(env, &local), vec![cp_ref(&id)]);
    no_staging_refs(env, &local);
}

#[test]
fn pre_receive_refusing_checkpoints_over_file() {
    pre_receive_refusing_checkpoints(Kind::File);
}

#[test]
fn pre_receive_refusing_checkpoints_over_http() {
    pre_receive_refusing_checkpoints(Kind::Http);
}

#[test]
fn pre_receive_refusing_checkpoints_over_sshd_and_daemon() {
    pre_receive_refusing_checkpoints(Kind::Sshd);
    pre_receive_refusing_checkpoints(Kind::Daemon);
}

#[test]
fn remote_down_fails_the_push_and_keeps_the_queue() {
    let mut s = Served::new(Kind::Daemon);
    let local = s.clone_local("local");
    let env = &s.env;
    checkpoint(env, &local, &hex_id(1));
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    s.server.as_mut().expect("daemon").stop();
    let env = &s.env;
    let out = env.run(&local, "git", ["push", "origin", "main"]);
    assert_ne!(out.status, 0, "{}", out.stderr);
    assert_eq!(queued(env, &local), vec![cp_ref(&hex_id(1))]);
    no_staging_refs(env, &local);
}

#[test]
fn atomic_pushes_keep_checkpoints_out_of_the_atomic_set() {
    atomic_push(Kind::Http);
    atomic_push(Kind::Sshd);
}

fn atomic_push(kind: Kind) {
    let s = Served::new(kind);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    s.hook(
        "server.git",
        "update",
        "case \"$1\" in refs/heads/blocked) echo 'blocked is frozen' >&2; exit 1;; esac; exit 0",
    );
    let id = hex_id(5);
    let value = checkpoint(env, &local, &id);
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    env.git(&local, &["branch", "blocked"]);
    let old_main = ref_value(env, &server, "refs/heads/main");
    let out = env.run(
        &local,
        "git",
        ["push", "--atomic", "origin", "main", "blocked"],
    );
    assert_ne!(
        out.status, 0,
        "the atomic set fails as a whole: {}",
        out.stderr
    );
    assert_eq!(
        ref_value(env, &server, "refs/heads/main"),
        old_main,
        "main is not updated alone"
    );
    assert_eq!(
        ref_value(env, &server, &cp_ref(&id)),
        Some(value),
        "checkpoints went separately"
    );
    assert!(queued(env, &local).is_empty());
    // Without the frozen branch the atomic push goes through.
    env.git(&local, &["push", "-q", "--atomic", "origin", "main"]);
    assert_eq!(
        ref_value(env, &server, "refs/heads/main"),
        ref_value(env, &local, "refs/heads/main")
    );
    no_staging_refs(env, &local);
}

#[test]
fn dry_run_pushes_and_dequeues_nothing() {
    for kind in [Kind::File, Kind::Http, Kind::Sshd] {
        let s = Served::new(kind);
        let env = &s.env;
        let server = s.path("server.git");
        let local = s.clone_local("local");
        let ids = [hex_id(1), hex_id(2)];
        for id in &ids {
            checkpoint(env, &local, id);
        }
        env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
        let before = refs(env, &server, "refs/");
        let out = env
            .run(&local, "git", ["push", "--dry-run", "origin", "main"])
            .ok();
        assert!(
            out.stderr.contains("would push 2 checkpoint(s)"),
            "{kind:?}: {}",
            out.stderr
        );
        assert_eq!(
            refs(env, &server, "refs/"),
            before,
            "{kind:?}: the server is untouched"
        );
        assert_eq!(
            queued(env, &local),
            ids.iter().map(|i| cp_ref(i)).collect::<Vec<_>>()
        );
        no_staging_refs(env, &local);
    }
}

#[test]
fn force_with_lease_is_honoured() {
    for kind in [Kind::File, Kind::Http, Kind::Sshd] {
        let s = Served::new(kind);
        let env = &s.env;
        let server = s.path("server.git");
        let local = s.clone_local("local");
        let seen = ref_value(env, &local, "refs/remotes/origin/main").expect("tracking ref");
        // Someone else moves the server's main; our rewrite must be refused with a stale lease.
        let seed = env.path().join("seed");
        env.git(&seed, &["commit", "-q", "--allow-empty", "-m", "theirs"]);
        env.git(
            &seed,
            &["push", "-q", server.to_str().expect("utf-8"), "main"],
        );
        env.git(
            &local,
            &[
                "commit",
                "-q",
                "--amend",
                "--allow-empty",
                "-m",
                "rewritten",
            ],
        );
        let stale = env.run(
            &local,
            "git",
            [
                "push",
                &format!("--force-with-lease=main:{seen}"),
                "origin",
                "main",
            ],
        );
        assert_ne!(stale.status, 0);
        assert!(
            stale.stderr.contains("stale info"),
            "{kind:?}: {}",
            stale.stderr
        );
        let current = ref_value(env, &server, "refs/heads/main").expect("server main");
        let ok = env
            .run(
                &local,
                "git",
                [
                    "push",
                    &format!("--force-with-lease=main:{current}"),
                    "origin",
                    "main",
                ],
            )
            .ok();
        assert!(
            ok.stderr.contains("forced update"),
            "{kind:?}: {}",
            ok.stderr
        );
        assert_eq!(
            ref_value(env, &server, "refs/heads/main"),
            ref_value(env, &local, "refs/heads/main")
        );
    }
}

#[test]
fn push_options_reach_the_server() {
    for kind in [Kind::File, Kind::Http, Kind::Sshd] {
        let s = Served::new(kind);
        let env = &s.env;
        let server = s.path("server.git");
        env.git(&server, &["config", "receive.advertisePushOptions", "true"]);
        let seen = env.path().join("push-options.txt");
        s.hook(
            "server.git",
            "post-receive",
            &format!(
                "i=0; while [ $i -lt \"${{GIT_PUSH_OPTION_COUNT:-0}}\" ]; do eval \"echo \\$GIT_PUSH_OPTION_$i\" >> '{}'; i=$((i+1)); done",
                seen.display()
            ),
        );
        let local = s.clone_local("local");
        checkpoint(env, &local, &hex_id(9));
        env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
        env.git(
            &local,
            &[
                "push",
                "-q",
                "-o",
                "ci.skip",
                "-o",
                "with space",
                "origin",
                "main",
            ],
        );
        let text = std::fs::read_to_string(&seen).expect("hook saw push options");
        assert!(text.lines().any(|l| l == "ci.skip"), "{kind:?}: {text}");
        assert!(text.lines().any(|l| l == "with space"), "{kind:?}: {text}");
        assert!(queued(env, &local).is_empty());
    }
}

#[test]
fn a_queue_line_naming_a_branch_is_never_pushed() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    let old_main = ref_value(env, &server, "refs/heads/main");
    env.git(
        &local,
        &["commit", "-q", "--allow-empty", "-m", "unpublished"],
    );
    enqueue(
        env,
        &local,
        &[
            "refs/heads/main",
            "refs/entire/checkpoints/zz/../../heads/main",
            "refs/tags/x",
        ],
    );
    let id = hex_id(3);
    let value = checkpoint(env, &local, &id);
    env.entire(&local, &["push"]).ok();
    env.git(&local, &["branch", "side", "HEAD~1"]);
    env.git(&local, &["push", "-q", "origin", "side"]);
    assert_eq!(
        ref_value(env, &server, "refs/heads/main"),
        old_main,
        "main was never pushed"
    );
    assert_eq!(ref_value(env, &server, &cp_ref(&id)), Some(value));
    assert!(
        queued(env, &local).is_empty(),
        "unusable lines are dropped, the checkpoint dequeued"
    );
}

#[test]
fn mirror_and_prune_pushes_never_delete_remote_checkpoints() {
    for kind in [Kind::File, Kind::Http, Kind::Sshd] {
        let s = Served::new(kind);
        let env = &s.env;
        let server = s.path("server.git");
        let other = env.repo("other");
        let id = hex_id(6);
        write_checkpoint(env, &other, &id, None);
        env.git(
            &other,
            &["push", "-q", server.to_str().expect("utf-8"), &cp_ref(&id)],
        );
        let local = s.clone_local("local");
        env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
        let url = format!("entire::{}", s.url("server.git"));
        env.git(&local, &["push", "-q", "--mirror", &url]);
        env.git(
            &local,
            &["push", "-q", "--prune", &url, "refs/heads/*:refs/heads/*"],
        );
        assert!(
            ref_value(env, &server, &cp_ref(&id)).is_some(),
            "{kind:?}: checkpoint survived"
        );
        assert_eq!(
            ref_value(env, &server, "refs/heads/main"),
            ref_value(env, &local, "refs/heads/main"),
            "{kind:?}"
        );
    }
}

#[test]
fn entire_remote_name_pushes_to_the_push_url() {
    let s = Served::new(Kind::Http);
    let env = &s.env;
    let target = s.bare("pushed.git");
    let local = s.clone_local("local");
    env.git(
        &local,
        &[
            "remote",
            "set-url",
            "--push",
            "origin",
            &s.url("pushed.git"),
        ],
    );
    let id = hex_id(8);
    let value = checkpoint(env, &local, &id);
    env.git(&local, &["push", "-q", "entire::origin", "main"]);
    assert_eq!(
        ref_value(env, &target, "refs/heads/main"),
        ref_value(env, &local, "refs/heads/main")
    );
    assert_eq!(ref_value(env, &target, &cp_ref(&id)), Some(value));
    assert_eq!(ref_value(env, &s.path("server.git"), &cp_ref(&id)), None);
}

#[test]
fn an_explicit_checkpoint_refspec_is_pushed_as_asked() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    let queued_id = hex_id(1);
    checkpoint(env, &local, &queued_id);
    let explicit = hex_id(2);
    let value = write_checkpoint(env, &local, &explicit, None);
    // The user's own refspec names a checkpoint ref: no glob rides along (it would collide).
    env.git(&local, &["push", "-q", "origin", &cp_ref(&explicit)]);
    assert_eq!(ref_value(env, &server, &cp_ref(&explicit)), Some(value));
    assert_eq!(ref_value(env, &server, &cp_ref(&queued_id)), None);
    assert_eq!(queued(env, &local), vec![cp_ref(&queued_id)]);
}
