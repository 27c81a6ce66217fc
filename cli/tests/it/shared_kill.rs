//! kill -9 at any point of a recovery (issue #13): a diverged push (b behind a on every shared ref and on a
//! checkpoint both wrote) to a git daemon is killed — the whole client process group: git, the helper, its git
//! children; the server's processes are not ours to kill — at 12 points spread over the time an uninterrupted
//! one takes. Whatever the kill left behind (scratch refs, merged
//! local refs not yet pushed, half-run children), the next `git entire push` delivers every checkpoint of both
//! clones in every layout, nothing forced, and leaves no scratch ref.

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::fixtures::{cp_ref, queued, ref_value};
use crate::shared_recover::{
    contains, diverged, missing, write, Diverged, CURRENT, MAIN, V2_MIRROR,
};
use crate::transports::Kind;

/// b's push, killed (process group, SIGKILL) after `delay`; `None` lets it finish. Returns how long it ran.
fn push_b(d: &Diverged, delay: Option<Duration>) -> Duration {
    let mut child =
        d.s.env
            .cmd("git", &d.b)
            .args(["push", "origin", "main:refs/heads/b"])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("push starts");
    let started = Instant::now();
    if let Some(delay) = delay {
        std::thread::sleep(delay);
        kill_group(child.id());
    }
    let _ = child.wait();
    started.elapsed()
}

/// SIGKILL process group `pgid` until no live (non-zombie) process is left in it: a process being forked
/// while the first signal is delivered can survive it.
fn kill_group(pgid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .stderr(Stdio::null())
            .status();
        let ps = std::process::Command::new("ps")
            .args(["-eo", "pgid=,stat="])
            .output()
            .expect("ps");
        let alive = String::from_utf8_lossy(&ps.stdout).lines().any(|l| {
            let mut f = l.split_whitespace();
            f.next() == Some(pgid.to_string().as_str()) && !f.next().unwrap_or("Z").starts_with('Z')
        });
        if !alive {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "process group {pgid} survives SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_recovery_killed_at_12_points_converges_on_the_next_push() {
    let full = push_b(&diverged(Kind::Daemon, V2_MIRROR), None);
    for step in 0..12u32 {
        let d = diverged(Kind::Daemon, V2_MIRROR);
        let env = &d.s.env;
        let server = d.s.path("server.git");
        let delay = full * step / 12 + Duration::from_millis(u64::from(step));
        push_b(&d, Some(delay));
        let out = env.entire(&d.b, &["push"]).ok();
        assert!(
            !out.stderr.contains("not pushed") && !out.stderr.contains("stays queued"),
            "step {step} ({delay:?}): {}",
            out.stderr
        );
        let lost = missing(&d.s, &[&d.a, &d.b], &d.ids, &d.shared, &["a2", "b2"]);
        assert!(
            lost.is_empty(),
            "step {step} ({delay:?}): missing {lost:?}\n{}",
            out.stderr
        );
        for (r, old) in &d.before {
            if let (Some(old), Some(new)) = (old, ref_value(env, &server, r)) {
                assert!(contains(env, &server, old, &new), "step {step}: {r} forced");
            }
        }
        assert!(
            env.git(&d.b, &["for-each-ref", "refs/entire-fetch-tmp/"])
                .is_empty(),
            "step {step}: scratch refs left"
        );
        env.git(&server, &["fsck", "--no-progress", "--no-dangling"]);
    }
}

/// A checkpoint ref the server cannot create (a stale lock there: receive-pack reports `failed to update ref`,
/// like a lost race) while the shared refs diverged: the recovery's fetch of that ref finds nothing, yet the
/// v2 refs are still merged and land; that checkpoint alone stays queued, and goes out once the lock is gone.
#[test]
fn a_checkpoint_the_server_cannot_create_does_not_stop_the_recovery_of_the_others() {
    let mut d = diverged(Kind::File, V2_MIRROR);
    let env = &d.s.env;
    let server = d.s.path("server.git");
    let stuck = write(env, &d.b, "b4", None);
    let lock = server.join(format!("{}.lock", cp_ref(&stuck)));
    std::fs::create_dir_all(lock.parent().expect("shard dir")).expect("shard dir");
    std::fs::write(&lock, "").expect("stale lock");
    let out = env
        .run(&d.b, "git", ["push", "origin", "main:refs/heads/b"])
        .ok();
    for r in [MAIN, CURRENT] {
        assert_eq!(
            ref_value(env, &server, r),
            ref_value(env, &d.b, r),
            "{r} recovered and landed\n{}",
            out.stderr
        );
    }
    assert_eq!(queued(env, &d.b), vec![cp_ref(&stuck)], "{}", out.stderr);
    assert_eq!(ref_value(env, &server, &cp_ref(&stuck)), None);
    std::fs::remove_file(&lock).expect("lock removed");
    let out = env.entire(&d.b, &["push"]).ok();
    assert!(queued(env, &d.b).is_empty(), "{}", out.stderr);
    d.ids.push(stuck);
    let lost = missing(&d.s, &[&d.a, &d.b], &d.ids, &d.shared, &["a2", "b2"]);
    assert!(lost.is_empty(), "missing {lost:?}\n{}", out.stderr);
}
