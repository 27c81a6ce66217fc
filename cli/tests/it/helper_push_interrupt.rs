//! Interrupted pushes through `git-remote-entire`: a helper killed mid-push, and a checkpoint rewritten while
//! its push is in flight. The next push converges; nothing queued is lost.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::fixtures::{
    checkpoint, cp_ref, enqueue, hex_id, queued, ref_value, refs, write_checkpoint,
};
use crate::helper_push::{no_staging_refs, STAGING};
use crate::transports::{Kind, Served};

/// Wait for a file to appear (a hook signalling that it runs).
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Commits on `main` in `local` and starts `git push origin main` with `stderr`, returning once the server's
/// pre-receive hook runs and holds the push; writing the returned file releases it.
fn push_held_by_the_hook(
    s: &Served,
    local: &Path,
    stderr: Stdio,
) -> (std::process::Child, std::path::PathBuf) {
    s.env
        .git(local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    let (started, release) = blocking_hook(s);
    let push = s
        .env
        .cmd("git", local)
        .args(["push", "origin", "main"])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("git push starts");
    wait_for(&started);
    (push, release)
}

/// A pre-receive hook that signals `started` and waits for `release`.
fn blocking_hook(s: &Served) -> (std::path::PathBuf, std::path::PathBuf) {
    let started = s.env.path().join("hook-started");
    let release = s.env.path().join("hook-release");
    s.hook(
        "server.git",
        "pre-receive",
        &format!(
            "cat >/dev/null; touch '{}'; while [ ! -e '{}' ]; do sleep 0.05; done",
            started.display(),
            release.display()
        ),
    );
    (started, release)
}

/// PIDs of running `git-remote-entire` processes whose arguments mention `needle`.
fn helper_pids(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("procfs").flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args
            .first()
            .is_some_and(|a| a.ends_with("git-remote-entire"))
            && args.iter().any(|a| a.contains(needle))
        {
            out.push(pid);
        }
    }
    out
}

#[test]
fn kill_9_mid_push_then_a_clean_next_push() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    let ids: Vec<String> = (1..=2).map(hex_id).collect();
    for id in &ids {
        checkpoint(env, &local, id);
    }
    // stderr not piped: the killed helper's orphaned children would hold the pipe open.
    let (push, release) = push_held_by_the_hook(&s, &local, Stdio::null());
    let pids = helper_pids(&server.display().to_string());
    assert_eq!(pids.len(), 1, "one helper process");
    let killed = std::process::Command::new("sh")
        .args(["-c", &format!("kill -9 {}", pids[0])])
        .status()
        .expect("kill");
    assert!(killed.success());
    let outcome = push.wait_with_output().expect("git push ends");
    assert!(
        !outcome.status.success(),
        "the push whose helper died fails"
    );
    assert!(
        !refs(env, &local, STAGING).is_empty(),
        "the killed run left its staging refs"
    );
    let packed = std::fs::read_to_string(local.join(".git/packed-refs")).expect("packed-refs");
    assert!(
        packed.contains(STAGING) && !local.join(".git").join(STAGING).exists(),
        "staging refs live in packed-refs, not in loose files"
    );
    assert_eq!(
        queued(env, &local),
        vec![cp_ref(&ids[0]), cp_ref(&ids[1])],
        "nothing dequeued"
    );
    // Let the orphaned inner push finish, then push again: everything lands, nothing is left behind.
    std::fs::write(&release, "").expect("release hook");
    let deadline = Instant::now() + Duration::from_secs(30);
    while ref_value(env, &server, "refs/heads/main") != ref_value(env, &local, "refs/heads/main") {
        assert!(Instant::now() < deadline, "orphaned push never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    env.entire(&local, &["push"]).ok();
    no_staging_refs(env, &local);
    assert!(queued(env, &local).is_empty());
    for id in &ids {
        assert_eq!(
            ref_value(env, &server, &cp_ref(id)),
            ref_value(env, &local, &cp_ref(id))
        );
    }
    let runs = local.join(".git/entire-push-runs");
    let left = std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "run locks are cleaned up");
}

#[test]
fn a_checkpoint_written_during_the_push_stays_queued_with_its_newer_value() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    let id = hex_id(4);
    let first = checkpoint(env, &local, &id);
    let (push, release) = push_held_by_the_hook(&s, &local, Stdio::piped());
    let second = write_checkpoint(env, &local, &id, Some(&first));
    enqueue(env, &local, &[&cp_ref(&id)]);
    std::fs::write(&release, "").expect("release hook");
    let out = push.wait_with_output().expect("git push ends");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ref_value(env, &server, &cp_ref(&id)), Some(first));
    assert_eq!(
        queued(env, &local),
        vec![cp_ref(&id)],
        "the newer value is still to be pushed"
    );
    std::fs::remove_file(server.join("hooks/pre-receive")).expect("remove hook");
    env.entire(&local, &["push"]).ok();
    assert_eq!(ref_value(env, &server, &cp_ref(&id)), Some(second));
    assert!(queued(env, &local).is_empty());
}
