//! `git entire-migrate` on synthetic histories written with `git fast-import`: dates through merges, kill -9
//! at many points of a larger run, leftovers of killed runs, repositories without a legacy branch.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::env::TestEnv;
use crate::migrate::*;

/// One legacy commit for `git fast-import`: parents are marks of earlier commits.
pub struct LegacyCommit {
    pub parents: Vec<usize>,
    pub date: i64,
    pub subject: String,
    pub files: Vec<(String, Vec<u8>)>,
}

/// Write `commits` (marks 1..) with one `git fast-import`; the last one becomes the legacy branch.
pub fn fast_import(env: &TestEnv, dir: &Path, commits: &[LegacyCommit]) {
    let mut s: Vec<u8> = Vec::new();
    for (i, c) in commits.iter().enumerate() {
        s.extend(format!("commit refs/fast-import/c{i}\nmark :{}\n", i + 1).bytes());
        s.extend(format!("author L Egacy <l@example.com> {} +0100\n", c.date).bytes());
        s.extend(format!("committer L Egacy <l@example.com> {} -0700\n", c.date + 7).bytes());
        s.extend(format!("data {}\n{}\n", c.subject.len(), c.subject).bytes());
        for (n, p) in c.parents.iter().enumerate() {
            s.extend(format!("{} :{p}\n", if n == 0 { "from" } else { "merge" }).bytes());
        }
        if c.parents.is_empty() {
            s.extend(b"deleteall\n");
        }
        for (path, data) in &c.files {
            s.extend(format!("M 100644 inline {path}\ndata {}\n", data.len()).bytes());
            s.extend(data);
            s.push(b'\n');
        }
        s.push(b'\n');
    }
    s.extend(format!("reset {LEGACY}\nfrom :{}\n\n", commits.len()).bytes());
    let mut child = env
        .cmd("git", dir)
        .args(["fast-import", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("git fast-import runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&s)
        .expect("write stream");
    assert!(child.wait().expect("fast-import").success());
    for i in 0..commits.len() {
        env.git(
            dir,
            &["update-ref", "-d", &format!("refs/fast-import/c{i}")],
        );
    }
}

pub fn checkpoint_files(id: &str, transcript_lines: usize) -> Vec<(String, Vec<u8>)> {
    let base = format!("{}/{}", &id[..2], &id[2..]);
    let root = format!(
        "{{\n  \"checkpoint_id\": \"{id}\",\n  \"sessions\": [\n    {{\n      \"metadata\": \"/{base}/0/metadata.json\",\n      \"transcript\": \"/{base}/0/full.jsonl\"\n    }}\n  ]\n}}\n"
    );
    let transcript: String = (0..transcript_lines)
        .map(|n| format!("{{\"n\":{n},\"id\":\"{id}\"}}\n"))
        .collect();
    vec![
        (format!("{base}/metadata.json"), root.into_bytes()),
        (
            format!("{base}/0/metadata.json"),
            format!("{{\"session_id\":\"s-{id}\"}}\n").into_bytes(),
        ),
        (format!("{base}/0/full.jsonl"), transcript.into_bytes()),
    ]
}

#[test]
fn dates_follow_the_side_line_through_merges() {
    let env = TestEnv::new();
    let dir = env.repo("r");
    let (x, y, z) = ("aaaaaaaaaa01", "bbbbbbbbbb02", "cccccccccc03");
    fast_import(
        &env,
        &dir,
        &[
            LegacyCommit {
                parents: vec![],
                date: 1_000_000,
                subject: format!("Checkpoint: {x}"),
                files: checkpoint_files(x, 2),
            },
            LegacyCommit {
                parents: vec![1],
                date: 2_000_000,
                subject: format!("Checkpoint: {y}"),
                files: checkpoint_files(y, 1),
            },
            LegacyCommit {
                parents: vec![1],
                date: 3_000_000,
                subject: format!("Checkpoint: {z}"),
                files: checkpoint_files(z, 3),
            },
            LegacyCommit {
                parents: vec![3, 2],
                date: 4_000_000,
                subject: "Merge remote session logs".into(),
                files: checkpoint_files(y, 1),
            },
        ],
    );
    migrate(&env, &dir, &[]).ok();
    let refs = checkpoint_refs(&env, &dir);
    let date = |id: &str| {
        let r = format!("refs/entire/checkpoints/{}/{id}", &id[10..]);
        env.git(&dir, &["log", "-1", "--format=%at %ct", &refs[&r]])
    };
    assert_eq!(date(x), "1000000 1000007");
    assert_eq!(
        date(y),
        "2000000 2000007",
        "credited to the side-line commit, not the merge"
    );
    assert_eq!(date(z), "3000000 3000007");
}

/// A linear legacy branch of `n` synthetic checkpoints, one commit each.
pub fn synthetic_legacy(env: &TestEnv, dir: &Path, n: usize) {
    let commits: Vec<LegacyCommit> = (0..n)
        .map(|i| {
            let id = format!(
                "{:012x}",
                (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16
            );
            LegacyCommit {
                parents: if i == 0 { vec![] } else { vec![i] },
                date: 1_700_000_000 + 60 * i as i64,
                subject: format!("Checkpoint: {id}"),
                files: checkpoint_files(&id, 20),
            }
        })
        .collect();
    fast_import(env, dir, &commits);
}

#[test]
fn kill_at_any_point_then_rerun_converges_to_the_uninterrupted_result() {
    let env = TestEnv::new();
    let source = env.repo("source");
    synthetic_legacy(&env, &source, 1200);
    let clone = |name: &str| {
        let dir = env.path().join(name);
        env.git(
            env.path(),
            &[
                "clone",
                "-q",
                "--mirror",
                source.to_str().expect("utf-8"),
                dir.to_str().expect("utf-8"),
            ],
        );
        dir
    };
    let reference = clone("reference");
    let start = Instant::now();
    migrate(&env, &reference, &[]).ok();
    let full = start.elapsed();
    let want = checkpoint_refs(&env, &reference);
    assert_eq!(want.len(), 1200);
    // This size dates on a second thread: spot-check its dates against git's own answer.
    for (name, commit) in want.iter().step_by(97) {
        let id = name.rsplit('/').next().expect("id");
        let path = format!("{}/{}", &id[..2], &id[2..]);
        let legacy = env.git(
            &reference,
            &["log", "-1", "--format=%ai|%ci", LEGACY, "--", &path],
        );
        assert_eq!(
            env.git(&reference, &["log", "-1", "--format=%ai|%ci", commit]),
            legacy,
            "{name}"
        );
    }
    let mut interrupted = 0;
    for step in 0..8u32 {
        let dir = clone(&format!("killed-{step}"));
        let delay = full * step / 8 + Duration::from_millis(u64::from(step));
        // The binary itself, not `git entire-migrate`: killing git would leave its child running.
        let mut child = env
            .cmd("git-entire-migrate", &dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("migration starts");
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let run = migrate(&env, &dir, &["--json"]).ok();
        let doc: Value = serde_json::from_str(&run.stdout).expect("json");
        assert_eq!(doc["failed"], 0, "step {step}");
        interrupted += usize::from(doc["migrated"].as_u64() > Some(0));
        assert_eq!(checkpoint_refs(&env, &dir), want, "step {step} ({delay:?})");
        assert_eq!(
            queued(&dir),
            want.keys().cloned().collect(),
            "step {step}: queue"
        );
        assert!(
            !dir.join("packed-refs.lock").exists(),
            "step {step}: stale lock"
        );
        fsck(&env, &dir);
    }
    assert!(
        interrupted > 0,
        "no kill landed before the refs were written"
    );
}

#[test]
fn leftovers_of_a_killed_run_are_recovered_but_foreign_locks_respected() {
    let env = TestEnv::new();
    let dir = sample_repo(&env, "r");
    let git_dir = dir.join(".git");
    // State of a run killed while holding packed-refs.lock (our temporary file linked to the lock), with a
    // half-written temporary pack and cache.
    std::fs::write(git_dir.join("entire-migrate-packed-refs.tmp"), "partial").expect("tmp");
    std::fs::hard_link(
        git_dir.join("entire-migrate-packed-refs.tmp"),
        git_dir.join("packed-refs.lock"),
    )
    .expect("link");
    std::fs::write(git_dir.join("objects/pack/tmp_entire-migrate.pack"), "PACK").expect("tmp pack");
    std::fs::write(git_dir.join("entire-migrate.cache.tmp"), "half").expect("tmp cache");
    migrate(&env, &dir, &[]).ok();
    assert_eq!(checkpoint_refs(&env, &dir).len(), 40);
    for leftover in [
        "packed-refs.lock",
        "entire-migrate-packed-refs.tmp",
        "objects/pack/tmp_entire-migrate.pack",
        "entire-migrate.cache.tmp",
    ] {
        assert!(!git_dir.join(leftover).exists(), "{leftover} survived");
    }
    fsck(&env, &dir);
    // A packed-refs.lock that is not ours is never removed.
    std::fs::write(git_dir.join("packed-refs.lock"), "someone else's").expect("foreign lock");
    std::fs::write(git_dir.join("entire-migrate-packed-refs.tmp"), "stale").expect("tmp");
    migrate(&env, &dir, &[]).ok(); // nothing to publish: the lock is not needed
    assert_eq!(
        std::fs::read_to_string(git_dir.join("packed-refs.lock")).expect("lock kept"),
        "someone else's"
    );
}

#[test]
fn no_legacy_branch_is_nothing_to_do_and_worktrees_share_the_result() {
    let env = TestEnv::new();
    let empty = env.repo("empty");
    let run = migrate(&env, &empty, &[]).ok();
    assert_eq!(run.trimmed(), "migrated 0, skipped 0, failed 0");
    assert!(run.stderr.contains("nothing to migrate"), "{}", run.stderr);

    let dir = sample_repo(&env, "r");
    let linked = env.path().join("linked");
    env.git(
        &dir,
        &[
            "worktree",
            "add",
            "-q",
            "--detach",
            linked.to_str().expect("utf-8"),
        ],
    );
    migrate(&env, &linked, &[]).ok();
    assert_eq!(
        checkpoint_refs(&env, &dir).len(),
        40,
        "refs land in the common dir"
    );
    assert_eq!(queued(&dir).len(), 40, "one queue for all worktrees");
    fsck(&env, &dir);
}
