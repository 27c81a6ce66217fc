//! `git entire-migrate` against real git: the 40-checkpoint sample, reruns, corrupt input, dry runs.
//! Shared helpers for the other `migrate_*` modules live here too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::env::{sample_bundle, Run, TestEnv};

pub const LEGACY: &str = "refs/heads/entire/checkpoints/v1";
/// A repository whose local legacy branch is the sample bundle's.
pub fn sample_repo(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.repo(name);
    let bundle = sample_bundle();
    let spec = format!("{LEGACY}:{LEGACY}");
    env.git(
        &dir,
        &["fetch", "-q", bundle.to_str().expect("utf-8 path"), &spec],
    );
    dir
}

pub fn migrate(env: &TestEnv, dir: &Path, args: &[&str]) -> Run {
    env.run(
        dir,
        "git",
        std::iter::once("entire-migrate").chain(args.iter().copied()),
    )
}

/// `(path, subtree)` of every checkpoint on the legacy branch, via `git ls-tree`.
pub fn legacy_checkpoints(env: &TestEnv, dir: &Path) -> Vec<(String, String)> {
    env.git(dir, &["ls-tree", "-r", "-d", LEGACY])
        .lines()
        .filter_map(|l| {
            let (meta, path) = l.split_once('\t')?;
            let subtree = meta.rsplit(' ').next()?;
            (path.matches('/').count() == 1).then(|| (path.to_string(), subtree.to_string()))
        })
        .collect()
}

/// `ref -> commit` under refs/entire/checkpoints.
pub fn checkpoint_refs(env: &TestEnv, dir: &Path) -> BTreeMap<String, String> {
    env.git(
        dir,
        &[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/entire/checkpoints/",
        ],
    )
    .lines()
    .filter_map(|l| {
        l.split_once(' ')
            .map(|(r, c)| (r.to_string(), c.to_string()))
    })
    .collect()
}

pub fn ref_of(path: &str) -> String {
    let id = path.replace('/', "");
    format!("refs/entire/checkpoints/{}/{id}", &id[id.len() - 2..])
}

/// Refs in the push queue of the repository at `dir` (bare or not).
pub fn queued(dir: &Path) -> BTreeSet<String> {
    let git_dir = if dir.join(".git").is_dir() {
        dir.join(".git")
    } else {
        dir.to_path_buf()
    };
    std::fs::read_to_string(git_dir.join("entire-checkpoint-push-queue.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()?
                .get("ref")?
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

pub fn fsck(env: &TestEnv, dir: &Path) {
    let run = env
        .run(dir, "git", ["fsck", "--strict", "--no-dangling"])
        .ok();
    assert!(
        !run.stderr.contains("error") && !run.stdout.contains("error"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

/// Objects in the repository, loose and packed.
pub fn object_count(env: &TestEnv, dir: &Path) -> usize {
    env.git(dir, &["count-objects", "-v"])
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| *k == "count" || *k == "in-pack")
        .map(|(_, v)| v.parse::<usize>().expect("number"))
        .sum()
}

/// What the migration must make of a legacy root metadata.json (an independent statement of the rules).
pub fn expected_root(legacy: &[u8], id: &str) -> Value {
    let mut v: Value = serde_json::from_slice(legacy).expect("legacy metadata is JSON");
    let m = v.as_object_mut().expect("object");
    m.remove("checkpoint_version");
    let prefix = format!("/{}/{}/", &id[..2], &id[2..]);
    if let Some(Value::Array(sessions)) = m.get_mut("sessions") {
        for s in sessions.iter_mut().filter_map(Value::as_object_mut) {
            for val in s.values_mut() {
                // Every leading repetition goes: real legacy data has doubled prefixes.
                while let Some(rest) = val.as_str().and_then(|x| x.strip_prefix(&prefix)) {
                    *val = Value::String(format!("/{rest}"));
                }
            }
        }
    }
    m.insert("checkpoints_version".into(), "refs-1".into());
    m.entry("cli_version").or_insert("entire-rs-migrate".into());
    v
}

pub fn assert_keys_sorted(v: &Value) {
    match v {
        Value::Object(m) => {
            let keys: Vec<&String> = m.keys().collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted, "keys not in alphabetical order");
            m.values().for_each(assert_keys_sorted);
        }
        Value::Array(a) => a.iter().for_each(assert_keys_sorted),
        _ => {}
    }
}

/// Go's MarshalIndent output for `v`: serde's pretty printer (same layout) plus Go's HTML-safe escapes.
pub fn go_style(v: &Value) -> String {
    let pretty = serde_json::to_string_pretty(v).expect("serializes");
    pretty
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        + "\n"
}

pub fn commit_legacy_change(env: &TestEnv, dir: &Path, changes: &[(String, Option<String>)]) {
    let index = dir.join(".git/tmp-index");
    let with_index = |args: &[&str]| {
        let out = env
            .cmd("git", dir)
            .args(args)
            .env("GIT_INDEX_FILE", &index)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    };
    with_index(&["read-tree", LEGACY]);
    for (path, blob) in changes {
        match blob {
            Some(b) => with_index(&[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("100644,{b},{path}"),
            ]),
            None => with_index(&["update-index", "--force-remove", path]),
        };
    }
    let tree = with_index(&["write-tree"]);
    let commit = env.git(
        dir,
        &[
            "commit-tree",
            &tree,
            "-p",
            LEGACY,
            "-m",
            "Update checkpoint",
        ],
    );
    env.git(dir, &["update-ref", LEGACY, &commit]);
    let _ = std::fs::remove_file(index);
}

pub fn write_blob(env: &TestEnv, dir: &Path, data: &[u8]) -> String {
    let mut child = env
        .cmd("git", dir)
        .args(["hash-object", "-w", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("write");
    String::from_utf8(child.wait_with_output().expect("git").stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[test]
fn sample_migrates_with_legacy_trees_dates_and_queue() {
    let env = TestEnv::new();
    let dir = sample_repo(&env, "r");
    let run = migrate(&env, &dir, &[]).ok();
    let legacy = legacy_checkpoints(&env, &dir);
    assert_eq!(legacy.len(), 40);
    assert_eq!(run.trimmed(), "migrated 40, skipped 0, failed 0");
    let refs = checkpoint_refs(&env, &dir);
    assert_eq!(refs.len(), 40);
    for (path, subtree) in &legacy {
        let id = path.replace('/', "");
        let commit = &refs[&ref_of(path)];
        // Orphan commit with upstream's message; tree = legacy subtree except root metadata.json.
        assert_eq!(
            env.git(&dir, &["log", "-1", "--format=%P", commit]),
            "",
            "{path} must be an orphan"
        );
        assert_eq!(
            env.git(&dir, &["log", "-1", "--format=%B", commit]),
            format!("Import checkpoint {id} (migrated from git-branch)")
        );
        let tree = env.git(&dir, &["rev-parse", &format!("{commit}^{{tree}}")]);
        let diff = env.git(&dir, &["diff-tree", "-r", "--name-only", subtree, &tree]);
        assert!(
            diff.is_empty() || diff == "metadata.json",
            "{path}: unexpected changes {diff}"
        );
        let old = env
            .run(
                &dir,
                "git",
                ["cat-file", "blob", &format!("{subtree}:metadata.json")],
            )
            .ok();
        let new = env
            .run(
                &dir,
                "git",
                ["cat-file", "blob", &format!("{tree}:metadata.json")],
            )
            .ok();
        let new_value: Value =
            serde_json::from_slice(&new.stdout_bytes).expect("migrated metadata is JSON");
        assert_eq!(new_value, expected_root(&old.stdout_bytes, &id), "{path}");
        // Every session's metadata path resolves in the migrated tree (76/74489fb0a9 has doubled prefixes;
        // other paths may name files legacy writers never stored, such as a missing context.md).
        for s in new_value["sessions"].as_array().into_iter().flatten() {
            let p = s["metadata"].as_str().unwrap_or("").trim_start_matches('/');
            let tree_path = format!("{tree}:{p}");
            let found = env.run(&dir, "git", ["cat-file", "-e", &tree_path]).status == 0;
            assert!(found, "{path}: session path {p:?} does not resolve");
        }
        assert_keys_sorted(&new_value);
        assert_eq!(
            new.stdout,
            go_style(&new_value),
            "{path}: not Go MarshalIndent formatting"
        );
        // Dates: those of the legacy commit that last changed this checkpoint, as git log finds it.
        let want = env.git(&dir, &["log", "-1", "--format=%ai|%ci", LEGACY, "--", path]);
        assert_eq!(
            env.git(&dir, &["log", "-1", "--format=%ai|%ci", commit]),
            want,
            "{path}"
        );
        let who = env.git(&dir, &["log", "-1", "--format=%an <%ae>|%cn <%ce>", commit]);
        assert_eq!(
            who,
            "A U Thor <author@example.com>|C O Mitter <committer@example.com>"
        );
    }
    assert_eq!(
        queued(&dir),
        refs.keys().cloned().collect(),
        "every migrated ref is queued"
    );
    fsck(&env, &dir);
}

#[test]
fn commit_ids_are_deterministic_and_match_git_commit_tree() {
    let env = TestEnv::new();
    let a = sample_repo(&env, "a");
    let b = sample_repo(&env, "b");
    migrate(&env, &a, &[]).ok();
    env.run(&b, "git", ["entire", "migrate"]).ok();
    let refs = checkpoint_refs(&env, &a);
    assert_eq!(refs, checkpoint_refs(&env, &b), "two clones, same commits");
    // The same commit, made by git itself from the same tree, dates and identity.
    for (name, commit) in refs.iter().take(5) {
        let id = name.rsplit('/').next().expect("id");
        let tree = env.git(&a, &["rev-parse", &format!("{commit}^{{tree}}")]);
        let dates = env.git(&a, &["log", "-1", "--format=%ad|%cd", "--date=raw", commit]);
        let (ad, cd) = dates.split_once('|').expect("two dates");
        let msg = format!("Import checkpoint {id} (migrated from git-branch)");
        let out = env
            .cmd("git", &a)
            .args(["commit-tree", &tree, "-m", &msg])
            .env("GIT_AUTHOR_DATE", ad)
            .env("GIT_COMMITTER_DATE", cd)
            .output()
            .expect("git runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            commit,
            "{name}"
        );
    }
}

#[test]
fn rerun_is_a_noop_and_a_changed_checkpoint_gets_a_commit_on_top() {
    let env = TestEnv::new();
    let dir = sample_repo(&env, "r");
    migrate(&env, &dir, &[]).ok();
    let refs = checkpoint_refs(&env, &dir);
    let objects = object_count(&env, &dir);
    let packed = std::fs::read(dir.join(".git/packed-refs")).expect("packed-refs");
    let queue = std::fs::read(dir.join(".git/entire-checkpoint-push-queue.jsonl")).expect("queue");
    let run = migrate(&env, &dir, &[]).ok();
    assert_eq!(run.trimmed(), "migrated 0, skipped 40, failed 0");
    assert_eq!(checkpoint_refs(&env, &dir), refs);
    assert_eq!(
        object_count(&env, &dir),
        objects,
        "a no-op rerun writes no object"
    );
    assert_eq!(
        std::fs::read(dir.join(".git/packed-refs")).expect("packed-refs"),
        packed
    );
    assert_eq!(
        std::fs::read(dir.join(".git/entire-checkpoint-push-queue.jsonl")).expect("queue"),
        queue
    );

    // Change one checkpoint on the legacy branch: add a file to its first session.
    let (path, _) = legacy_checkpoints(&env, &dir).remove(3);
    let blob = write_blob(&env, &dir, b"late summary\n");
    commit_legacy_change(&env, &dir, &[(format!("{path}/0/summary.txt"), Some(blob))]);
    let run = migrate(&env, &dir, &["--json"]).ok();
    let doc: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(
        (doc["updated"].as_u64(), doc["skipped"].as_u64()),
        (Some(1), Some(39))
    );
    let name = ref_of(&path);
    let new = checkpoint_refs(&env, &dir)[&name].clone();
    assert_eq!(
        env.git(&dir, &["log", "-1", "--format=%P", &new]),
        refs[&name],
        "new commit on top of the old"
    );
    assert_eq!(
        env.git(&dir, &["cat-file", "blob", &format!("{new}:0/summary.txt")]),
        "late summary"
    );
    fsck(&env, &dir);
}

/// Commit `changes` (`path -> Some(blob)` to add, `None` to delete) on top of the legacy branch.
#[test]
fn corrupt_checkpoints_are_reported_and_skipped() {
    let env = TestEnv::new();
    let dir = sample_repo(&env, "r");
    let bad_json = write_blob(&env, &dir, b"{ not json");
    let wrong_id = write_blob(
        &env,
        &dir,
        br#"{"checkpoint_id":"aaaaaaaaaaaa","sessions":[]}"#,
    );
    let transcript = write_blob(&env, &dir, b"{}\n");
    commit_legacy_change(
        &env,
        &dir,
        &[
            ("ab/cdef012345/metadata.json".into(), Some(bad_json)),
            ("ab/cdef012346/metadata.json".into(), Some(wrong_id)),
            (
                "ab/cdef012347/0/full.jsonl".into(),
                Some(transcript.clone()),
            ),
            (
                "abc/cdef012348/metadata.json".into(),
                Some(transcript.clone()),
            ),
            ("ab/NOT-AN-ID/metadata.json".into(), Some(transcript)),
        ],
    );
    let run = migrate(&env, &dir, &[]).code(1);
    assert_eq!(run.trimmed(), "migrated 40, skipped 0, failed 5");
    for (path, why) in [
        ("ab/cdef012345", "invalid JSON"),
        ("ab/cdef012346", "\"aaaaaaaaaaaa\""),
        ("ab/cdef012347", "missing metadata.json"),
        ("abc", "not a checkpoint shard"),
        ("ab/NOT-AN-ID", "invalid checkpoint ID"),
    ] {
        let line = run
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("error: checkpoint {path}: ")));
        assert!(
            line.is_some_and(|l| l.contains(why)),
            "{path}: {why}\n{}",
            run.stderr
        );
    }
    assert_eq!(
        checkpoint_refs(&env, &dir).len(),
        40,
        "the good checkpoints were migrated"
    );
    let again = migrate(&env, &dir, &[]).code(1);
    assert_eq!(
        again.trimmed(),
        "migrated 0, skipped 40, failed 5",
        "a rerun reports them again"
    );
    fsck(&env, &dir);
}

#[test]
fn dry_run_writes_nothing_and_predicts_the_real_run() {
    let env = TestEnv::new();
    let dir = sample_repo(&env, "r");
    let before = object_count(&env, &dir);
    let listing = |d: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(d.join(".git"))
            .expect("git dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let files = listing(&dir);
    let dry = migrate(&env, &dir, &["--dry-run", "--json"]).ok();
    assert_eq!(object_count(&env, &dir), before, "dry run wrote objects");
    assert_eq!(listing(&dir), files, "dry run created files");
    assert!(checkpoint_refs(&env, &dir).is_empty());
    let doc: Value = serde_json::from_str(&dry.stdout).expect("json");
    assert_eq!(doc["dry_run"], true);
    let predicted: BTreeMap<String, String> = doc["checkpoints"]
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            (
                c["ref"].as_str().expect("ref").into(),
                c["commit"].as_str().expect("commit").into(),
            )
        })
        .collect();
    assert_eq!(predicted.len(), 40);
    migrate(&env, &dir, &[]).ok();
    assert_eq!(checkpoint_refs(&env, &dir), predicted);
}
