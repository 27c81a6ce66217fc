//! The push queue: concurrency across processes, tolerance of damaged files, remove-if-unchanged.

use std::process::Command;

use entire::store::queue::Queue;

use crate::env::TestEnv;

const WORKER_ENV: &str = "ENTIRE_TEST_QUEUE_WORKER";

fn ref_for(worker: usize, i: usize) -> String {
    let id = format!("{worker:04x}{i:08x}");
    format!("refs/entire/checkpoints/{}/{id}", &id[10..])
}

/// Not a test on its own: the body of one enqueuing process, started by `concurrent_enqueues_lose_nothing`.
#[test]
#[ignore = "worker process body, run by concurrent_enqueues_lose_nothing"]
fn queue_worker() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let (dir, worker) = spec.split_once('|').expect("worker spec is dir|n");
    let worker: usize = worker.parse().expect("worker number");
    let queue = Queue::new(std::path::Path::new(dir));
    for i in 0..500 {
        queue
            .enqueue(&[ref_for(worker, i)])
            .expect("enqueue succeeds");
    }
}

#[test]
fn concurrent_enqueues_lose_nothing() {
    let env = TestEnv::new();
    let common = env.path().join("common");
    std::fs::create_dir_all(&common).expect("mkdir");
    let exe = std::env::current_exe().expect("test binary path");
    let children: Vec<_> = (0..8)
        .map(|w| {
            Command::new(&exe)
                .args([
                    "queue::queue_worker",
                    "--exact",
                    "--ignored",
                    "--test-threads=1",
                    "-q",
                ])
                .stdout(std::process::Stdio::null())
                .env(WORKER_ENV, format!("{}|{w}", common.display()))
                .spawn()
                .expect("worker starts")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("worker exits").success(), "a worker failed");
    }
    let raw = std::fs::read_to_string(common.join("entire-checkpoint-push-queue.jsonl"))
        .expect("queue file");
    assert_eq!(
        raw.lines().count(),
        4000,
        "every append landed as its own line"
    );
    let refs = Queue::new(&common).drain().expect("drain");
    assert_eq!(refs.len(), 4000, "exactly 4000 unique entries");
    let unique: std::collections::HashSet<_> = refs.iter().collect();
    assert_eq!(unique.len(), 4000);
    for w in 0..8 {
        assert!(
            refs.contains(&ref_for(w, 499)),
            "worker {w}'s last entry is there"
        );
    }
}

#[test]
fn damaged_queue_files_are_tolerated_and_compacted() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    let file = repo.join(".git/entire-checkpoint-push-queue.jsonl");
    let good_a = "refs/entire/checkpoints/c4/a3b2c4d5e6c4";
    let good_b = "refs/entire/checkpoints/JV/01M3WE2VX9HQC3NVY9BWYCW6JV";
    let body = format!(
        "{{\"ref\":\"{good_a}\"}}\n\n   \nnot json at all\n{{\"ref\":\"refs/heads/main\"}}\n{{\"ref\":\"{good_a}\"}}\n\
         {{\"ref\":\"refs/entire/checkpoints/zz/a3b2c4d5e6c4\"}}\n{{\"ref\":\"{good_b}\",\"extra\":true}}\n{{\"ref\":\"{good_b}\""
    );
    std::fs::write(&file, body).expect("write queue");
    let status: serde_json::Value =
        serde_json::from_str(&env.entire(&repo, &["status", "--json"]).ok().stdout).expect("json");
    assert_eq!(
        status["queued"],
        serde_json::json!([good_a, good_b]),
        "peek skips bad lines"
    );
    let queue = Queue::new(&repo.join(".git"));
    assert_eq!(
        queue.drain().expect("drain"),
        vec![good_a.to_string(), good_b.to_string()]
    );
    let compacted = std::fs::read_to_string(&file).expect("queue file");
    assert_eq!(
        compacted,
        format!("{{\"ref\":\"{good_a}\"}}\n{{\"ref\":\"{good_b}\"}}\n"),
        "drain compacts"
    );
    assert!(
        queue.enqueue(&["refs/heads/main"]).is_err(),
        "foreign refs are refused"
    );
    assert!(
        queue.enqueue(&[good_a, "refs/tags/v1"]).is_err(),
        "one bad name rejects the call"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("queue file"),
        compacted,
        "nothing half-written"
    );
    queue.remove(&[good_a, good_b]).expect("remove");
    assert!(!file.exists(), "an empty queue deletes the file");
}

#[test]
fn an_append_after_a_torn_line_stays_readable() {
    let env = TestEnv::new();
    let common = env.path().join("c");
    std::fs::create_dir_all(&common).expect("mkdir");
    let file = common.join("entire-checkpoint-push-queue.jsonl");
    let (a, b) = (ref_for(2, 1), ref_for(2, 2));
    // A writer killed mid-append left half a line behind.
    std::fs::write(
        &file,
        format!("{{\"ref\":\"{a}\"}}\n{{\"ref\":\"refs/entire/chec"),
    )
    .expect("write");
    Queue::new(&common)
        .enqueue(std::slice::from_ref(&b))
        .expect("enqueue");
    assert_eq!(
        Queue::new(&common).peek().expect("peek"),
        vec![a, b],
        "the torn line is skipped, ours survives"
    );
}

#[test]
fn remove_if_unchanged_keeps_moved_refs() {
    let env = TestEnv::new();
    let common = env.path().join("c");
    std::fs::create_dir_all(&common).expect("mkdir");
    let queue = Queue::new(&common);
    let (a, b, c, d) = (ref_for(1, 1), ref_for(1, 2), ref_for(1, 3), ref_for(1, 4));
    queue
        .enqueue(&[a.clone(), b.clone(), c.clone()])
        .expect("enqueue");
    let pushed = vec![
        (a.clone(), 1),
        (b.clone(), 1),
        (c.clone(), 1),
        (d.clone(), 1),
    ];
    // a is unchanged, b moved on during the push, c was deleted locally; d moved too but is not queued
    // (dequeued meanwhile, as a shared-ref recovery does): it does not "stay queued".
    let kept = queue
        .remove_if_unchanged(&pushed, |r| match r {
            r if r == a => Some(1),
            r if r == b || r == d => Some(2),
            _ => None,
        })
        .expect("remove_if_unchanged");
    assert_eq!(kept, vec![b.clone(), c.clone()]);
    assert_eq!(queue.peek().expect("peek"), vec![b, c]);
}
