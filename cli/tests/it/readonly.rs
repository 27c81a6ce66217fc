//! `git entire status`, `show` and `list` work on a repository the user cannot write (issue 9, item 11), with
//! the same output as for its owner. Tests run as root, so the commands run as `nobody` through `setpriv`
//! (git itself needs `safe.directory=*` for a repository owned by someone else, set in the hermetic global
//! config); where the machine cannot switch users the test says why and skips.

use std::path::Path;
use std::process::Command;

use crate::env::{Run, TestEnv};
use crate::fixtures::{commit_linking, path_str, session, set_mode};

/// `git <args>` in `dir` as `nobody` (uid/gid 65534, no supplementary groups).
fn as_nobody(env: &TestEnv, dir: &Path, args: &[&str]) -> Run {
    let mut c = env.cmd("setpriv", dir);
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        "git",
    ]);
    Run::from_output(c.args(args).output().expect("setpriv runs"))
}

/// Why `nobody` cannot be used here, if it cannot.
fn cannot_switch_users() -> Option<String> {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .output();
    match out {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(String::from_utf8_lossy(&o.stderr).trim().to_string()),
        Err(e) => Some(format!("no setpriv: {e}")),
    }
}

/// Make everything below `dir` readable (and directories searchable) by others, writable only by the owner.
fn open_for_reading(dir: &Path) {
    let status = Command::new("chmod")
        .args(["-R", "go+rX,go-w", path_str(dir)])
        .status()
        .expect("chmod runs");
    assert!(status.success());
}

#[test]
fn status_show_list_work_on_a_read_only_repository() {
    if let Some(why) = cannot_switch_users() {
        eprintln!("skipped: cannot run a command as another user on this machine ({why})");
        return;
    }
    let env = TestEnv::new();
    let remote = env.bare("remote.git");
    let repo = env.repo("repo");
    set_mode(&repo, Some("refs-v1"));
    env.git(&repo, &["remote", "add", "origin", path_str(&remote)]);
    let dir = session(&env, "s", r#"{"session_id": "s-1"}"#, b"{\"a\":1}\n");
    let id = env
        .entire(&repo, &["write", path_str(&dir)])
        .ok()
        .trimmed()
        .to_string();
    commit_linking(&env, &repo, "work", &[&id]);
    std::fs::write(
        env.path().join("gitconfig-global"),
        "[safe]\n\tdirectory = *\n",
    )
    .expect("global config");
    open_for_reading(env.path());
    // The repository really is read-only for nobody.
    let probe = as_nobody(&env, &repo, &["update-ref", "refs/heads/probe", "HEAD"]);
    assert_ne!(probe.status, 0, "nobody can write the repository");

    let commands: [&[&str]; 6] = [
        &["entire", "status"],
        &["entire", "status", "--json"],
        &["entire", "show", &id],
        &["entire", "show", &id, "0/full.jsonl"],
        &["entire", "list"],
        &["entire", "list", "--json"],
    ];
    for args in commands {
        let ro = as_nobody(&env, &repo, args);
        let owner = env.run(&repo, "git", args);
        assert_eq!(
            (ro.status, &ro.stdout),
            (owner.status, &owner.stdout),
            "{args:?} read-only (left) vs owner (right); stderr read-only:\n{}\nstderr owner:\n{}",
            ro.stderr,
            owner.stderr
        );
        assert_eq!(ro.status, 0, "{args:?}: {}", ro.stderr);
    }
}
