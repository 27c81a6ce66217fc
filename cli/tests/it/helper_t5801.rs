//! The transport-agnostic cases of git's `t/t5801-remote-helpers.sh`, with `testgit::` replaced by `entire::`,
//! run over every transport: clone, fetch (new and multiple branches, HEAD, by URL into FETCH_HEAD, tags),
//! pull, push (new branch by name, `old:new`, `HEAD:new`, forced, deleted, messages), `remote.<name>.vcs`,
//! and a broken remote reporting failure.

use std::path::{Path, PathBuf};

use crate::fixtures::ref_value;
use crate::transports::{Kind, Served};

fn t5801(kind: Kind) {
    let s = Served::new(kind);
    let local = clone_fetch_pull(&s);
    push_cases(&s, &local);
    fetch_cases(&s, &local);
    transport_was_used(&s, &local);
    broken_remote(&s);
}

/// clone; fetch new and multiple branches; pull. Returns the clone.
fn clone_fetch_pull(s: &Served) -> PathBuf {
    let env = &s.env;
    let url = s.url("server.git");
    let server = s.path("server.git");
    let seed = env.path().join("seed");

    // clone
    env.git(
        env.path(),
        &["clone", "-q", &format!("entire::{url}"), "local"],
    );
    let local = env.path().join("local");
    let server_main = ref_value(env, &server, "refs/heads/main").expect("server main");
    assert_eq!(
        ref_value(env, &local, "refs/remotes/origin/main").as_deref(),
        Some(server_main.as_str())
    );
    assert_eq!(
        env.git(&local, &["symbolic-ref", "HEAD"]),
        "refs/heads/main"
    );
    assert_eq!(
        env.git(&local, &["config", "remote.origin.url"]),
        format!("entire::{url}")
    );

    // fetch new branch, fetch multiple branches
    let server_path = server.to_str().expect("utf-8");
    env.git(&seed, &["checkout", "-q", "-b", "new"]);
    env.git(&seed, &["commit", "-q", "--allow-empty", "-m", "on new"]);
    env.git(&seed, &["branch", "other"]);
    env.git(&seed, &["push", "-q", server_path, "new", "other"]);
    env.git(&local, &["fetch", "-q"]);
    for b in ["new", "other"] {
        assert_eq!(
            ref_value(env, &local, &format!("refs/remotes/origin/{b}")),
            ref_value(env, &server, &format!("refs/heads/{b}")),
            "branch {b} fetched"
        );
    }

    // pull
    env.git(&seed, &["checkout", "-q", "main"]);
    env.git(
        &seed,
        &["commit", "-q", "--allow-empty", "-m", "second on main"],
    );
    env.git(&seed, &["push", "-q", server_path, "main"]);
    env.git(&local, &["pull", "-q", "--ff-only"]);
    assert_eq!(
        ref_value(env, &local, "refs/heads/main"),
        ref_value(env, &server, "refs/heads/main")
    );

    local
}

/// push; new branch by name, old:new, HEAD:new; forced; delete.
fn push_cases(s: &Served, local: &Path) {
    let env = &s.env;
    let server = s.path("server.git");
    let local = local.to_path_buf();

    // push
    env.git(
        &local,
        &["commit", "-q", "--allow-empty", "-m", "local work"],
    );
    let out = env.run(&local, "git", ["push", "origin", "main"]).ok();
    assert!(out.stderr.contains("main -> main"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("[new branch]"),
        "no spurious new-branch message: {}",
        out.stderr
    );
    assert_eq!(
        ref_value(env, &server, "refs/heads/main"),
        ref_value(env, &local, "refs/heads/main")
    );

    // push new branch by name, old:new, HEAD:new
    env.git(&local, &["branch", "byname"]);
    let out = env.run(&local, "git", ["push", "origin", "byname"]).ok();
    assert_eq!(
        out.stderr.matches("[new branch]").count(),
        1,
        "{}",
        out.stderr
    );
    env.git(&local, &["push", "-q", "origin", "main:renamed"]);
    env.git(&local, &["push", "-q", "origin", "HEAD:refs/heads/headnew"]);
    let head = ref_value(env, &local, "refs/heads/main");
    for b in ["byname", "renamed", "headnew"] {
        assert_eq!(
            ref_value(env, &server, &format!("refs/heads/{b}")),
            head,
            "{b}"
        );
    }

    // forced push
    env.git(&local, &["reset", "-q", "--hard", "HEAD~1"]);
    let rejected = env.run(&local, "git", ["push", "origin", "main"]);
    assert_ne!(rejected.status, 0, "non-fast-forward push must fail");
    assert!(
        rejected.stderr.contains("[rejected]"),
        "{}",
        rejected.stderr
    );
    assert!(
        rejected.stderr.contains("non-fast-forward"),
        "{}",
        rejected.stderr
    );
    let forced = env
        .run(&local, "git", ["push", "--force", "origin", "main"])
        .ok();
    assert!(
        forced.stderr.contains("(forced update)"),
        "{}",
        forced.stderr
    );
    assert_eq!(
        ref_value(env, &server, "refs/heads/main"),
        ref_value(env, &local, "refs/heads/main")
    );

    // delete
    env.git(&local, &["push", "-q", "origin", ":renamed"]);
    assert_eq!(ref_value(env, &server, "refs/heads/renamed"), None);
}

/// fetch HEAD; fetch by URL (FETCH_HEAD); fetch tag.
fn fetch_cases(s: &Served, local: &Path) {
    let env = &s.env;
    let url = s.url("server.git");
    let server = s.path("server.git");
    let server_path = server.to_str().expect("utf-8");
    let seed = env.path().join("seed");
    let local = local.to_path_buf();

    // fetch HEAD, fetch by URL (FETCH_HEAD)
    env.git(&local, &["fetch", "-q", "origin", "HEAD"]);
    let fetch_head = std::fs::read_to_string(local.join(".git/FETCH_HEAD")).expect("FETCH_HEAD");
    assert!(fetch_head.starts_with(&ref_value(env, &server, "refs/heads/main").expect("main")));
    env.git(&local, &["fetch", "-q", &format!("entire::{url}"), "other"]);
    let fetch_head = std::fs::read_to_string(local.join(".git/FETCH_HEAD")).expect("FETCH_HEAD");
    assert!(
        fetch_head.contains("branch 'other' of entire::"),
        "{fetch_head}"
    );

    // fetch tag (annotated: the peeled value is listed too)
    env.git(&seed, &["tag", "-a", "-m", "v1", "v1", "main"]);
    env.git(&seed, &["push", "-q", server_path, "v1"]);
    env.git(&local, &["fetch", "-q", "origin", "tag", "v1"]);
    assert_eq!(
        ref_value(env, &local, "refs/tags/v1"),
        ref_value(env, &server, "refs/tags/v1")
    );
}

/// The transport under test really carried the traffic (and really required the credentials).
fn transport_was_used(s: &Served, local: &Path) {
    let env = &s.env;
    let kind = s.kind;
    let url = s.url("server.git");
    if kind == Kind::Sshd {
        assert!(s.connections() > Some(0), "server log:\n{}", s.log());
    } else if kind != Kind::File {
        assert!(s.push_connections() > Some(0), "server log:\n{}", s.log());
        assert!(s.fetch_connections() > Some(0), "server log:\n{}", s.log());
    }
    if kind == Kind::HttpAuth {
        let anonymous = env.run(
            local,
            "git",
            ["-c", "credential.helper=", "ls-remote", &url],
        );
        assert_ne!(anonymous.status, 0, "the server must demand credentials");
    }
}

/// A remote that does not exist: the helper reports, git fails, nothing is left behind.
fn broken_remote(s: &Served) {
    let env = &s.env;
    let broken = s.url("missing.git");
    let out = env.run(
        env.path(),
        "git",
        ["clone", &format!("entire::{broken}"), "broken"],
    );
    assert_ne!(out.status, 0);
    assert!(
        !env.path().join("broken").exists(),
        "a failed clone leaves nothing behind"
    );
    assert!(!out.stderr.is_empty(), "failure is reported");
}

#[test]
fn t5801_over_file() {
    t5801(Kind::File);
}

#[test]
fn t5801_over_git_daemon() {
    t5801(Kind::Daemon);
}

#[test]
fn t5801_over_http() {
    t5801(Kind::Http);
}

#[test]
fn t5801_over_http_with_basic_auth() {
    t5801(Kind::HttpAuth);
}

#[test]
fn t5801_over_ssh() {
    t5801(Kind::Ssh);
}

#[test]
fn t5801_over_real_sshd() {
    t5801(Kind::Sshd);
}

#[test]
fn remote_vcs_entire_and_entire_remote_name_forms() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let local = env.repo("local");
    let url = s.url("server.git");
    // remote.<name>.vcs = entire: git runs the helper with the remote name and its URL.
    env.git(&local, &["remote", "add", "v", &url]);
    env.git(&local, &["config", "remote.v.vcs", "entire"]);
    let out = env
        .cmd("git", &local)
        .args(["fetch", "v"])
        .env("GIT_TRANSPORT_HELPER_DEBUG", "1")
        .output()
        .expect("git runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Got cap push"),
        "the entire helper served the fetch: {stderr}"
    );
    assert!(ref_value(env, &local, "refs/remotes/v/main").is_some());
    // entire::<remote-name>: resolved through `git remote get-url`, nested entire:: stripped.
    env.git(
        &local,
        &["remote", "add", "nested", &format!("entire::{url}")],
    );
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "x"]);
    env.git(
        &local,
        &["push", "-q", "entire::nested", "HEAD:refs/heads/via-name"],
    );
    assert_eq!(
        ref_value(env, &s.path("server.git"), "refs/heads/via-name"),
        ref_value(env, &local, "refs/heads/main")
    );
    // A name that resolves to itself is refused, not followed forever.
    env.git(&local, &["remote", "add", "loop", "entire::loop"]);
    let out = env.run(&local, "git", ["push", "loop", "HEAD:refs/heads/x"]);
    assert_ne!(out.status, 0);
    assert!(out.stderr.contains("resolves to itself"), "{}", out.stderr);
}

#[test]
fn insteadof_back_to_entire_is_refused_not_recursed() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let local = s.clone_local("local");
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "x"]);
    let url = s.url("server.git");
    // Every push to the real URL is rewritten to go through the helper again: the nested helper refuses.
    // (A queued checkpoint makes the helper push through an inner `git push`, where the rewrite applies.)
    env.git(
        &local,
        &["config", &format!("url.entire::{url}.pushInsteadOf"), &url],
    );
    crate::fixtures::checkpoint(env, &local, &crate::fixtures::hex_id(1));
    let out = env.run(&local, "git", ["push", &format!("entire::{url}"), "main"]);
    assert_ne!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("refusing to run inside itself"),
        "{}",
        out.stderr
    );
}
