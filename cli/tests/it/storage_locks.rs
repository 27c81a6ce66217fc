//! git's lock protocol and crash order (SPEC §8): killed writers strand no checkpoint and leave no lock that
//! blocks git, a foreign `packed-refs.lock` does not block writes, concurrent `git gc` does not fail writes,
//! and the `reference-transaction` hook sees (and can veto) checkpoint ref updates.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::env::{bin_dir, TestEnv};
use crate::fixtures::{hex_id, path_str, queued, refs, session, set_mode};

const PREFIX: &str = "refs/entire/checkpoints/";

fn refs_repo(env: &TestEnv, name: &str) -> PathBuf {
    let repo = env.repo(name);
    set_mode(&repo, Some("refs-v1"));
    repo
}

fn lock_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "lock")
                && !p.ends_with("entire-checkpoint-push-queue.lock")
            {
                out.push(p);
            }
        }
    }
    out
}

/// A tiny deterministic pseudo-random sequence (no dependency).
fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

/// Kill `write` at pseudo-random instants with `signal`; returns how many runs were killed mid-way.
fn kill_writes(env: &TestEnv, repo: &Path, dir: &Path, signal: &str, runs: u32, seed: u64) -> u32 {
    let exe = bin_dir().join("git-entire");
    // A run's length: the fastest of three (the first one warms the caches).
    let span = (0..3)
        .map(|n| {
            let start = Instant::now();
            let run = env
                .cmd(&exe, repo)
                .args(["write", "--id", &hex_id(9990 + n), path_str(dir)])
                .output()
                .expect("write runs");
            assert!(run.status.success());
            start.elapsed().as_micros() as u64
        })
        .min()
        .unwrap_or(1)
        .max(1);
    let mut seed = seed;
    let mut killed = 0;
    for i in 0..runs {
        let mut child = env
            .cmd(&exe, repo)
            .args(["write", "--id", &hex_id(i), path_str(dir)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("write starts");
        std::thread::sleep(Duration::from_micros(next(&mut seed) % span));
        if signal == "KILL" {
            let _ = child.kill();
        } else {
            std::process::Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .stderr(Stdio::null())
                .status()
                .expect("kill runs");
        }
        let status = child.wait().expect("write exits");
        killed += u32::from(!status.success());
        // The invariant holds at every instant: each existing checkpoint ref is queued.
        let queue = queued(env, repo);
        for (name, _) in refs(env, repo, PREFIX) {
            assert!(
                queue.contains(&name),
                "{signal} run {i}: {name} exists but is not queued"
            );
        }
    }
    eprintln!("{signal}: {killed} of {runs} runs interrupted (a run takes {span} µs)");
    killed
}

#[test]
fn killed_writes_strand_no_checkpoint_and_leave_no_blocking_lock() {
    let env = TestEnv::new();
    let repo = refs_repo(&env, "r");
    let dir = session(&env, "s", r#"{"session_id": "k"}"#, &vec![b'x'; 200_000]);
    let server = env.bare("server.git");
    let killed = kill_writes(&env, &repo, &dir, "KILL", 50, 7);
    let termed = kill_writes(&env, &repo, &dir, "TERM", 20, 11);
    assert!(
        killed + termed > 0,
        "no run was interrupted: the test proves nothing"
    );
    assert_eq!(
        lock_files(&repo.join(".git"))
            .iter()
            .filter(|p| p.ends_with("packed-refs.lock"))
            .count(),
        0,
        "no packed-refs.lock is ever taken or left by a write"
    );
    env.git(&repo, &["gc", "-q"]);
    env.git(&repo, &["fsck", "--no-progress"]);
    env.git(
        &repo,
        &[
            "push",
            "-q",
            &format!("entire::{}", path_str(&server)),
            "main",
        ],
    );
    let local = refs(&env, &repo, PREFIX);
    assert!(!local.is_empty());
    assert_eq!(
        refs(&env, &server, PREFIX),
        local,
        "one push delivers every checkpoint"
    );
}

#[test]
fn polite_signals_during_writes_leave_no_lock_file() {
    let env = TestEnv::new();
    let repo = refs_repo(&env, "r");
    let dir = session(&env, "s", r#"{"session_id": "t"}"#, b"t\n");
    for (signal, seed) in [("TERM", 3), ("INT", 5), ("HUP", 13)] {
        kill_writes(&env, &repo, &dir, signal, 8, seed);
        assert_eq!(
            lock_files(&repo.join(".git")),
            Vec::<PathBuf>::new(),
            "{signal}"
        );
    }
}

#[test]
fn a_foreign_packed_refs_lock_blocks_neither_writes_nor_push() {
    let env = TestEnv::new();
    let repo = refs_repo(&env, "r");
    let dir = session(&env, "s", r#"{"session_id": "p"}"#, b"p\n");
    let first = env
        .entire(&repo, &["write", "--id", &hex_id(1), path_str(&dir)])
        .ok();
    env.git(&repo, &["pack-refs", "--all"]);
    let lock = repo.join(".git/packed-refs.lock");
    std::fs::write(&lock, "").expect("foreign lock");
    // Create a new ref and update the packed-only one while somebody else holds packed-refs.lock.
    env.entire(&repo, &["write", "--id", &hex_id(2), path_str(&dir)])
        .ok();
    let other = session(&env, "s2", r#"{"session_id": "p2"}"#, b"p2\n");
    env.entire(&repo, &["write", "--id", first.trimmed(), path_str(&other)])
        .ok();
    assert_eq!(refs(&env, &repo, PREFIX).len(), 2);
    // Push stages some other way (loose refs) and delivers, or says why not with a non-zero exit.
    let server = env.bare("server.git");
    env.git(&repo, &["remote", "add", "origin", path_str(&server)]);
    let push = env.entire(&repo, &["push"]);
    if push.status == 0 {
        assert_eq!(
            refs(&env, &server, PREFIX),
            refs(&env, &repo, PREFIX),
            "{}",
            push.stderr
        );
    } else {
        assert!(push.stderr.contains("packed-refs.lock"), "{}", push.stderr);
    }
    // The migration waits for the lock, then fails naming it; after release everything converges.
    env.git(&repo, &["config", "core.packedRefsTimeout", "300"]);
    let legacy = env.repo("legacy");
    env.git(&legacy, &["config", "core.packedRefsTimeout", "300"]);
    env.entire(&legacy, &["write", path_str(&dir)]).ok();
    std::fs::write(legacy.join(".git/packed-refs.lock"), "").expect("foreign lock");
    let migrate = env.run(&legacy, "git", ["entire-migrate", "--no-sign"]);
    assert_ne!(migrate.status, 0);
    assert!(
        migrate.stderr.contains("packed-refs.lock"),
        "{}",
        migrate.stderr
    );
    std::fs::remove_file(legacy.join(".git/packed-refs.lock")).expect("release");
    env.run(&legacy, "git", ["entire-migrate", "--no-sign"])
        .ok();
    std::fs::remove_file(&lock).expect("release");
    env.entire(&repo, &["push"]).ok();
    assert_eq!(refs(&env, &server, PREFIX), refs(&env, &repo, PREFIX));
    assert!(queued(&env, &repo).is_empty());
}

#[test]
fn concurrent_gc_and_pack_refs_fail_no_write() {
    let env = TestEnv::new();
    let repo = refs_repo(&env, "r");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        let env_cmd = |args: &[&str]| {
            let mut c = env.cmd("git", &repo);
            c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
            c
        };
        let mut loops = [
            // Plain `gc`: its prune grace period is what protects concurrent writers' fresh objects
            // (`--prune=now` is documented by git as unsafe while anyone writes, git's own writers included).
            env_cmd(&["gc", "-q"]),
            env_cmd(&["pack-refs", "--all"]),
            env_cmd(&["prune-packed"]),
            env_cmd(&["update-ref", "refs/heads/churn", "HEAD"]),
            env_cmd(&["update-ref", "-d", "refs/heads/churn"]),
        ];
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = loops[n % loops.len()].status();
                n += 1;
            }
        })
    };
    let dirs: Vec<PathBuf> = (0..4)
        .map(|w| {
            session(
                &env,
                &format!("w{w}"),
                &format!(r#"{{"session_id": "w{w}"}}"#),
                b"w\n",
            )
        })
        .collect();
    let writers: Vec<_> = dirs
        .iter()
        .enumerate()
        .map(|(w, d)| {
            let mut cmds = Vec::new();
            for i in 0..8u32 {
                let mut c = env.cmd("git", &repo);
                c.args([
                    "entire",
                    "write",
                    "--id",
                    &hex_id(w as u32 * 100 + i),
                    path_str(d),
                ])
                .stdout(Stdio::null());
                cmds.push(c);
            }
            std::thread::spawn(move || {
                cmds.into_iter()
                    .map(|mut c| c.output().expect("write runs"))
                    .filter(|o| !o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let failures: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer thread"))
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().expect("churn thread");
    assert_eq!(failures, Vec::<String>::new(), "writes failed under gc");
    let local = refs(&env, &repo, PREFIX);
    assert_eq!(local.len(), 32, "no ref lost");
    let queue = queued(&env, &repo);
    assert!(
        local.iter().all(|(n, _)| queue.contains(n)),
        "queue covers every unpushed ref"
    );
    env.git(&repo, &["fsck", "--no-progress"]);
}

#[test]
fn reference_transaction_hook_sees_and_can_veto_checkpoint_writes() {
    let env = TestEnv::new();
    let repo = refs_repo(&env, "r");
    let dir = session(&env, "s", r#"{"session_id": "h"}"#, b"h\n");
    let hooks = env.path().join("hooks");
    std::fs::create_dir_all(&hooks).expect("hooks dir");
    let hook = hooks.join("reference-transaction");
    let log = env.path().join("hook.log");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nwhile read old new ref; do echo \"$1 $ref\" >> '{}'; \
             case \"$ref\" in refs/entire/*) if [ -e '{}' ]; then echo 'policy: no checkpoints here' >&2; exit 1; fi;; esac; done\n",
            log.display(),
            env.path().join("veto").display()
        ),
    )
    .expect("write hook");
    std::process::Command::new("chmod")
        .args(["+x", path_str(&hook)])
        .status()
        .expect("chmod");
    env.git(&repo, &["config", "core.hooksPath", path_str(&hooks)]);
    let id = env
        .entire(&repo, &["write", path_str(&dir)])
        .ok()
        .trimmed()
        .to_string();
    let seen = std::fs::read_to_string(&log).expect("hook ran");
    let name = format!("refs/entire/checkpoints/{}/{id}", &id[24..]);
    assert!(seen.contains(&format!("prepared {name}")), "{seen}");
    assert!(seen.contains(&format!("committed {name}")), "{seen}");

    std::fs::write(env.path().join("veto"), "").expect("veto");
    let vetoed = env.entire(&repo, &["write", "--id", &hex_id(5), path_str(&dir)]);
    assert_ne!(vetoed.status, 0, "the hook's veto stops the write");
    assert!(
        vetoed.stderr.contains("policy: no checkpoints here"),
        "{}",
        vetoed.stderr
    );
    assert!(!refs(&env, &repo, PREFIX)
        .iter()
        .any(|(n, _)| n.ends_with(&hex_id(5))));
}

/// Deterministic crash point: the test holds the queue's lock, so the writer stops at its first enqueue; a
/// kill -9 there must not leave a ref that is not queued (upstream #2393 updates the ref first).
#[test]
fn a_write_killed_while_it_waits_for_the_queue_strands_nothing() {
    let env = TestEnv::new();
    let repo = refs_repo(&env, "r");
    let dir = session(&env, "s", r#"{"session_id": "q"}"#, b"q\n");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(repo.join(".git/entire-checkpoint-push-queue.lock"))
        .expect("queue lock file");
    lock.lock().expect("hold the queue lock");
    let mut child = env
        .cmd(bin_dir().join("git-entire"), &repo)
        .args(["write", "--id", &hex_id(1), path_str(&dir)])
        .stdout(Stdio::null())
        .spawn()
        .expect("write starts");
    std::thread::sleep(Duration::from_millis(700));
    child.kill().expect("kill -9");
    child.wait().expect("write exits");
    lock.unlock().expect("release");
    let queue = queued(&env, &repo);
    for (name, _) in refs(&env, &repo, PREFIX) {
        assert!(queue.contains(&name), "{name} exists but is not queued");
    }
}
