//! Store robustness: concurrent writers, a failing mirror, and `git entire fsck` on tampered refs.

use std::path::PathBuf;

use crate::env::TestEnv;
use crate::fixtures::{path_str, queued, session, set_mode};

const SAMPLE_BRANCH: &str = "refs/heads/entire/checkpoints/v1";

#[test]
fn concurrent_writers_to_one_checkpoint_lose_no_session() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1-mirror"));
    let id = "01KVBJCWYA4YW6J5M9GP655HZN";
    let dirs: Vec<PathBuf> = (0..6)
        .map(|i| {
            session(
                &env,
                &format!("c{i}"),
                &format!(r#"{{"session_id": "sess-{i}"}}"#),
                format!("t{i}\n").as_bytes(),
            )
        })
        .collect();
    let children: Vec<_> = dirs
        .iter()
        .map(|d| {
            env.cmd("git", &repo)
                .args(["entire", "write", "--id", id, path_str(d)])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("writer starts")
        })
        .collect();
    for mut c in children {
        assert!(
            c.wait().expect("writer exits").success(),
            "a concurrent writer failed"
        );
    }
    let root: serde_json::Value =
        serde_json::from_str(&env.entire(&repo, &["show", id]).ok().stdout).expect("json");
    assert_eq!(
        root["sessions"].as_array().map(Vec::len),
        Some(6),
        "every session has a slot: {root}"
    );
    let ref_name = format!("refs/entire/checkpoints/ZN/{id}");
    assert_eq!(
        env.git(&repo, &["rev-list", "--count", &ref_name]),
        "6",
        "one commit per write, none lost"
    );
    let mirror = env.git(
        &repo,
        &[
            "ls-tree",
            "-d",
            "--name-only",
            &format!("{SAMPLE_BRANCH}:01/KVBJCWYA4YW6J5M9GP655HZN"),
        ],
    );
    assert_eq!(
        mirror.lines().count(),
        6,
        "the mirror got every session too"
    );
    let queued = queued(&env, &repo);
    assert!(
        queued.iter().all(|l| l.contains(&ref_name)) && !queued.is_empty(),
        "{queued:?}"
    );
    env.git(&repo, &["fsck", "--strict"]);
}

#[test]
fn a_failed_mirror_write_is_a_warning_and_the_checkpoint_stays_readable() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1-mirror"));
    // Another process "holds" the legacy branch: its lock file exists.
    let lock = repo.join(".git/refs/heads/entire/checkpoints/v1.lock");
    std::fs::create_dir_all(lock.parent().expect("parent")).expect("mkdir");
    std::fs::write(&lock, "").expect("create lock");
    let dir = session(&env, "m", r#"{"session_id": "m"}"#, b"m\n");
    let run = env.entire(&repo, &["write", path_str(&dir)]).ok();
    assert!(
        run.stderr.contains(
            "warning: mirror write to the legacy branch refs/heads/entire/checkpoints/v1 failed"
        ),
        "{}",
        run.stderr
    );
    let id = run.trimmed().to_string();
    assert_eq!(
        env.entire(&repo, &["show", &id, "0/full.jsonl"])
            .ok()
            .stdout,
        "m\n"
    );
    assert_eq!(
        queued(&env, &repo).len(),
        1,
        "the authoritative write was queued"
    );
    assert!(
        env.run(&repo, "git", ["rev-parse", "--verify", "-q", SAMPLE_BRANCH])
            .status
            != 0,
        "no branch was written"
    );
}

#[test]
fn fsck_reports_mismatched_refs_and_hashes() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    set_mode(&repo, Some("refs-v1"));
    let dir = session(&env, "f", r#"{"session_id": "f"}"#, b"f\n");
    let id = env
        .entire(&repo, &["write", path_str(&dir)])
        .ok()
        .trimmed()
        .to_string();
    env.entire(&repo, &["fsck"]).ok();
    let good = format!("refs/entire/checkpoints/{}/{id}", &id[24..]);
    // A ref whose tree belongs to another checkpoint, and one whose transcript no longer matches its hash.
    env.git(
        &repo,
        &[
            "update-ref",
            "refs/entire/checkpoints/c4/a3b2c4d5e6c4",
            &good,
        ],
    );
    let tree = env.git(&repo, &["rev-parse", &format!("{good}^{{tree}}")]);
    let slot = env.git(&repo, &["rev-parse", &format!("{good}:0")]);
    let bad_blob = env.git_stdin(&repo, &["hash-object", "-w", "--stdin"], "tampered\n");
    let listing = env.git(&repo, &["ls-tree", &slot]).replace(
        &env.git(&repo, &["rev-parse", &format!("{good}:0/full.jsonl")]),
        &bad_blob,
    );
    let new_slot = env.git_stdin(&repo, &["mktree"], &format!("{listing}\n"));
    let root = env
        .git(&repo, &["ls-tree", &tree])
        .replace(&slot, &new_slot);
    let new_root = env.git_stdin(&repo, &["mktree"], &format!("{root}\n"));
    let commit = env.git(
        &repo,
        &["commit-tree", &new_root, "-p", &good, "-m", "tamper"],
    );
    env.git(&repo, &["update-ref", &good, &commit]);

    let run = env.entire(&repo, &["fsck", "--json"]).code(1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    let problems: Vec<String> = report["problems"]
        .as_array()
        .expect("array")
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["subject"].as_str().unwrap_or(""),
                p["problem"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(report["checked"], 2);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("c4/a3b2c4d5e6c4") && p.contains("names checkpoint")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains(&good) && p.contains("content_hash.txt does not match")),
        "{problems:?}"
    );
}
