//! Checkpoint fixtures for transport tests, built with plain git plumbing so the transport is tested
//! independently of the store: a checkpoint is an orphan commit whose root tree holds `metadata.json`, at
//! `refs/entire/checkpoints/<shard>/<id>`; queueing appends `{"ref":…}` lines to the shared queue file.

use std::path::{Path, PathBuf};

use crate::env::TestEnv;

/// The queue file of the repository at `repo` (any worktree, bare or not).
pub fn queue_file(env: &TestEnv, repo: &Path) -> PathBuf {
    let common = env.git(
        repo,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    );
    PathBuf::from(common).join("entire-checkpoint-push-queue.jsonl")
}

/// Append queue lines naming `refs` (no validation: tests also queue refs that must never be pushed).
pub fn enqueue(env: &TestEnv, repo: &Path, refs: &[&str]) {
    let file = queue_file(env, repo);
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    for r in refs {
        text.push_str(&format!("{{\"ref\":\"{r}\"}}\n"));
    }
    std::fs::write(&file, text).expect("write queue");
}

/// The refs named in the queue, in order (empty when the file is gone).
pub fn queued(env: &TestEnv, repo: &Path) -> Vec<String> {
    std::fs::read_to_string(queue_file(env, repo))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v.get("ref")?.as_str().map(str::to_string)
        })
        .collect()
}

/// The canonical ref of a checkpoint ID.
pub fn cp_ref(id: &str) -> String {
    format!("refs/entire/checkpoints/{}/{id}", &id[id.len() - 2..])
}

/// Create (or advance, when `parent` is given) checkpoint `id` in `repo`; returns the new commit.
pub fn write_checkpoint(env: &TestEnv, repo: &Path, id: &str, parent: Option<&str>) -> String {
    let meta = format!(
        "{{\"checkpoint_id\":\"{id}\",\"v\":\"{}\"}}\n",
        parent.unwrap_or("first")
    );
    let blob = env.git_stdin(repo, &["hash-object", "-w", "--stdin"], &meta);
    let tree = env.git_stdin(
        repo,
        &["mktree"],
        &format!("100644 blob {blob}\tmetadata.json\n"),
    );
    let mut args = vec!["commit-tree", tree.as_str(), "-m"];
    let msg = format!("Checkpoint: {id}");
    args.push(&msg);
    if let Some(p) = parent {
        args.extend(["-p", p]);
    }
    let commit = env.git(repo, &args);
    env.git(repo, &["update-ref", &cp_ref(id), &commit]);
    commit
}

/// Write and queue checkpoint `id`; returns its commit.
pub fn checkpoint(env: &TestEnv, repo: &Path, id: &str) -> String {
    let c = write_checkpoint(env, repo, id, None);
    enqueue(env, repo, &[&cp_ref(id)]);
    c
}

/// A 12-hex checkpoint ID derived from `n` (distinct shards for small `n`).
pub fn hex_id(n: u32) -> String {
    format!("{:012x}", 0xa0b0_c0d0_0000_u64 + u64::from(n) * 0x1_0001)
}

/// `(name, value)` of every ref under `prefix` in `repo`.
pub fn refs(env: &TestEnv, repo: &Path, prefix: &str) -> Vec<(String, String)> {
    env.git(
        repo,
        &["for-each-ref", "--format=%(refname) %(objectname)", prefix],
    )
    .lines()
    .filter_map(|l| {
        l.split_once(' ')
            .map(|(a, b)| (a.to_string(), b.to_string()))
    })
    .collect()
}

/// The value of `name` in `repo`, if it exists.
pub fn ref_value(env: &TestEnv, repo: &Path, name: &str) -> Option<String> {
    refs(env, repo, name)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// Commit a change in `repo` with `Entire-Checkpoint` trailers for `ids`; returns the commit.
pub fn commit_linking(env: &TestEnv, repo: &Path, subject: &str, ids: &[&str]) -> String {
    let file = repo.join("code.txt");
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    text.push_str(subject);
    text.push('\n');
    std::fs::write(&file, text).expect("write code");
    env.git(repo, &["add", "code.txt"]);
    let mut msg = format!("{subject}\n\n");
    for id in ids {
        msg.push_str(&format!("Entire-Checkpoint: {id}\n"));
    }
    env.git(repo, &["commit", "-q", "-m", &msg]);
    env.git(repo, &["rev-parse", "HEAD"])
}

/// Write `.entire/settings.json` selecting `mode` (`None`: no store setting).
pub fn set_mode(repo: &Path, mode: Option<&str>) {
    std::fs::create_dir_all(repo.join(".entire")).expect("mkdir .entire");
    let body = match mode {
        Some(m) => format!("{{\"strategy_options\": {{\"checkpoint_store\": \"{m}\"}}}}\n"),
        None => "{}\n".to_string(),
    };
    std::fs::write(repo.join(".entire/settings.json"), body).expect("write settings");
}

/// A session directory with the given metadata JSON and transcript.
pub fn session(env: &TestEnv, name: &str, metadata: &str, transcript: &[u8]) -> PathBuf {
    let dir = env.path().join("sessions").join(name);
    std::fs::create_dir_all(&dir).expect("mkdir session");
    std::fs::write(dir.join("metadata.json"), metadata).expect("write metadata");
    std::fs::write(dir.join("full.jsonl"), transcript).expect("write transcript");
    std::fs::write(dir.join("prompt.txt"), format!("prompt of {name}\n")).expect("write prompt");
    dir
}

/// A path as `&str` for command arguments.
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `git entire write <session dir>` in `repo`; returns the new checkpoint's ID.
pub fn entire_write(env: &TestEnv, repo: &Path, session: &Path) -> String {
    env.entire(repo, &["write", path_str(session)])
        .ok()
        .trimmed()
        .to_string()
}
