//! Exit codes and output plumbing (SPEC §8): internal failures exit 128, bad input 1, a closed stdout ends the
//! command quietly after its write finished, and `git entire push` fails when queued checkpoints were not sent.

use std::io::Read;
use std::process::Stdio;

use crate::env::{bin_dir, TestEnv};
use crate::fixtures::{hex_id, path_str, refs, session, set_mode};

const PREFIX: &str = "refs/entire/checkpoints/";

#[test]
fn io_failures_exit_128_and_bad_input_exits_1() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1"));
    let dir = session(&env, "s", r#"{"session_id": "e"}"#, b"e\n");
    let missing = env.entire(&repo, &["write", path_str(&env.path().join("nope"))]);
    assert_eq!(missing.status, 1, "{}", missing.stderr);
    // The queue cannot be written (its lock is a directory): an I/O failure, not the user's fault.
    std::fs::create_dir(repo.join(".git/entire-checkpoint-push-queue.lock")).expect("mkdir");
    let failed = env.entire(&repo, &["write", "--id", &hex_id(1), path_str(&dir)]);
    assert_eq!(failed.status, 128, "{}", failed.stderr);
    assert!(
        refs(&env, &repo, PREFIX).is_empty(),
        "queued first: no ref without a queue entry"
    );
    // A push that cannot read the queue says so and fails instead of reporting "nothing to push".
    let server = env.bare("server.git");
    env.git(&repo, &["remote", "add", "origin", path_str(&server)]);
    let push = env.entire(&repo, &["push"]);
    assert_eq!(push.status, 128, "{}", push.stderr);
    assert!(push.stderr.contains("not pushed"), "{}", push.stderr);
}

#[test]
fn a_closed_stdout_ends_quietly_after_the_write() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1"));
    let dir = session(&env, "s", r#"{"session_id": "p"}"#, b"p\n");
    for args in [
        vec!["write", "--json", "--id", "0123456789ab", path_str(&dir)],
        vec!["status", "--json"],
        vec!["fsck", "--json"],
    ] {
        let mut child = env
            .cmd(bin_dir().join("git-entire"), &repo)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut stderr)
            .expect("read stderr");
        let status = child.wait().expect("exits");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(status.code(), Some(101), "{args:?}: {stderr}");
    }
    assert_eq!(refs(&env, &repo, PREFIX).len(), 1, "the write finished");
}
