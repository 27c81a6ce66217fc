//! Staging refs of push runs: whatever killed runs left behind (staging refs packed or loose, a stale
//! `packed-refs.lock`, lock files) is removed by the next push, while a live run's refs and anything outside
//! `refs/entire/push-queue/` are left alone.

use std::fs::{self, File};
use std::path::Path;

use crate::fixtures::{checkpoint, cp_ref, hex_id, queued, ref_value, refs};
use crate::transports::{Kind, Served};

const STAGING: &str = "refs/entire/push-queue/";

fn staging_names(env: &crate::env::TestEnv, repo: &Path) -> Vec<String> {
    refs(env, repo, STAGING)
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

#[test]
fn leftovers_of_killed_runs_are_removed_by_the_next_push() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    let git_dir = local.join(".git");
    let runs = git_dir.join("entire-push-runs");
    let value = checkpoint(env, &local, &hex_id(1));
    let dead_packed = format!("{STAGING}01DEADPACKED/c4/a3b2c4d5e6c4");
    let dead_loose = format!("{STAGING}01DEADLOOSE/c4/a3b2c4d5e6c4");
    let live = format!("{STAGING}01LIVE/c4/a3b2c4d5e6c4");
    // A killed run of this version: staging ref packed, its lock file, and a packed-refs.lock that is its
    // temporary file (killed mid-rewrite).
    env.git(&local, &["update-ref", &dead_packed, &value]);
    env.git(&local, &["pack-refs", "--all"]);
    fs::create_dir_all(&runs).expect("runs dir");
    fs::write(runs.join("01DEADPACKED.lock"), "").expect("dead lock");
    let tmp = runs.join("01DEADPACKED.packed-refs.tmp");
    fs::write(&tmp, "").expect("tmp");
    fs::hard_link(&tmp, git_dir.join("packed-refs.lock")).expect("stale packed-refs.lock");
    // A killed run of an older version: a loose staging ref, no lock file. A live run: lock held.
    env.git(&local, &["update-ref", &dead_loose, &value]);
    env.git(&local, &["update-ref", &live, &value]);
    let live_lock = File::create(runs.join("01LIVE.lock")).expect("live lock");
    live_lock.lock().expect("lock");

    env.entire(&local, &["push"]).ok();

    assert_eq!(
        staging_names(env, &local),
        vec![live.clone()],
        "only the live run's ref is left"
    );
    assert!(
        !git_dir.join("packed-refs.lock").exists(),
        "stale packed-refs.lock removed"
    );
    assert!(!git_dir
        .join("refs/entire/push-queue/01DEADLOOSE")
        .join("c4/a3b2c4d5e6c4")
        .exists());
    let mut left: Vec<String> = fs::read_dir(&runs)
        .expect("runs dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["01LIVE.lock".to_string()]);
    assert!(queued(env, &local).is_empty(), "the checkpoint was pushed");
    assert_eq!(
        ref_value(env, &server, &cp_ref(&hex_id(1))),
        Some(value.clone())
    );
    assert_eq!(ref_value(env, &local, &cp_ref(&hex_id(1))), Some(value));
    drop(live_lock);
}
