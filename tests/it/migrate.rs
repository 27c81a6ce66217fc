//! `git entire-migrate` against real git: the 40-checkpoint sample, synthetic histories written with
//! `git fast-import`, signing with a fresh ssh key, and kill -9 at many points of a larger run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::env::{sample_bundle, Run, TestEnv};

const LEGACY: &str = "refs/heads/entire/checkpoints/v1";

/// A repository whose local legacy branch is the sample bundle's.
fn sample_repo(env: &TestEnv, name: &str) -> PathBuf {
    let dir = env.repo(name);
    let bundle = sample_bundle();
    let spec = format!("{LEGACY}:{LEGACY}");
    env.git(
        &dir,
        &["fetch", "-q", bundle.to_str().expect("utf-8 path"), &spec],
    );
    dir
}

fn migrate(env: &TestEnv, dir: &Path, args: &[&str]) -> Run {
    env.run(
        dir,
        "git",
        std::iter::once("entire-migrate").chain(args.iter().copied()),
    )
}

/// `(path, subtree)` of every checkpoint on the legacy branch, via `git ls-tree`.
fn legacy_checkpoints(env: &TestEnv, dir: &Path) -> Vec<(String, String)> {
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
fn checkpoint_refs(env: &TestEnv, dir: &Path) -> BTreeMap<String, String> {
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

fn ref_of(path: &str) -> String {
    let id = path.replace('/', "");
    format!("refs/entire/checkpoints/{}/{id}", &id[id.len() - 2..])
}

/// Refs in the push queue of the repository at `dir` (bare or not).
fn queued(dir: &Path) -> BTreeSet<String> {
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

fn fsck(env: &TestEnv, dir: &Path) {
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
fn object_count(env: &TestEnv, dir: &Path) -> usize {
    env.git(dir, &["count-objects", "-v"])
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| *k == "count" || *k == "in-pack")
        .map(|(_, v)| v.parse::<usize>().expect("number"))
        .sum()
}

/// What the migration must make of a legacy root metadata.json (an independent statement of the rules).
fn expected_root(legacy: &[u8], id: &str) -> Value {
    let mut v: Value = serde_json::from_slice(legacy).expect("legacy metadata is JSON");
    let m = v.as_object_mut().expect("object");
    m.remove("checkpoint_version");
    let prefix = format!("/{}/{}/", &id[..2], &id[2..]);
    if let Some(Value::Array(sessions)) = m.get_mut("sessions") {
        for s in sessions.iter_mut().filter_map(Value::as_object_mut) {
            for val in s.values_mut() {
                if let Some(rest) = val.as_str().and_then(|x| x.strip_prefix(&prefix)) {
                    *val = Value::String(format!("/{rest}"));
                }
            }
        }
    }
    m.insert("checkpoints_version".into(), "refs-1".into());
    m.entry("cli_version").or_insert("entire-rs-migrate".into());
    v
}

fn assert_keys_sorted(v: &Value) {
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
fn go_style(v: &Value) -> String {
    let pretty = serde_json::to_string_pretty(v).expect("serializes");
    pretty
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        + "\n"
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
fn commit_legacy_change(env: &TestEnv, dir: &Path, changes: &[(String, Option<String>)]) {
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

fn write_blob(env: &TestEnv, dir: &Path, data: &[u8]) -> String {
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

#[test]
fn author_override_and_remote_tracking_source() {
    let env = TestEnv::new();
    let dir = env.path().join("clone");
    // Cloning the bundle leaves only refs/remotes/origin/entire/checkpoints/v1.
    env.git(
        env.path(),
        &[
            "clone",
            "-q",
            sample_bundle().to_str().expect("utf-8"),
            dir.to_str().expect("utf-8"),
        ],
    );
    let run = migrate(
        &env,
        &dir,
        &[
            "--json",
            "--author",
            "Entire Checkpoint Migration <checkpoints@entire.io>",
        ],
    )
    .ok();
    let doc: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(
        doc["source"]["ref"],
        "refs/remotes/origin/entire/checkpoints/v1"
    );
    assert_eq!(doc["created"], 40);
    for commit in checkpoint_refs(&env, &dir).values() {
        let who = env.git(&dir, &["log", "-1", "--format=%an <%ae>|%cn <%ce>", commit]);
        assert_eq!(who, "Entire Checkpoint Migration <checkpoints@entire.io>|C O Mitter <committer@example.com>");
    }
    migrate(&env, &dir, &["--author", "no email"]).code(2);

    // Without GIT_* identity variables, git's configuration decides: author.* over user.*.
    let configured = sample_repo(&env, "configured");
    for (k, v) in [
        ("user.name", "U Ser"),
        ("user.email", "user@example.com"),
        ("author.name", "Au Thor"),
    ] {
        env.git(&configured, &["config", k, v]);
    }
    let out = env
        .cmd("git", &configured)
        .arg("entire-migrate")
        .env_remove("GIT_AUTHOR_NAME")
        .env_remove("GIT_AUTHOR_EMAIL")
        .env_remove("GIT_COMMITTER_NAME")
        .env_remove("GIT_COMMITTER_EMAIL")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let commit = checkpoint_refs(&env, &configured)
        .into_values()
        .next()
        .expect("a ref");
    let who = env.git(
        &configured,
        &["log", "-1", "--format=%an <%ae>|%cn <%ce>", &commit],
    );
    assert_eq!(who, "Au Thor <user@example.com>|U Ser <user@example.com>");
}

#[test]
fn ssh_signing_follows_git_config_and_verifies() {
    let env = TestEnv::new();
    let dir = sample_repo(&env, "r");
    let key = env.path().join("key");
    env.run(
        env.path(),
        "ssh-keygen",
        [
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "test",
            "-f",
            key.to_str().expect("utf-8"),
        ],
    )
    .ok();
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let allowed = env.path().join("allowed_signers");
    std::fs::write(&allowed, format!("committer@example.com {public}"))
        .expect("write allowed signers");
    for (k, v) in [
        ("gpg.format", "ssh"),
        ("user.signingKey", key.to_str().expect("utf-8")),
        ("commit.gpgSign", "true"),
        (
            "gpg.ssh.allowedSignersFile",
            allowed.to_str().expect("utf-8"),
        ),
    ] {
        env.git(&dir, &["config", k, v]);
    }
    let copy = env.path().join("copy");
    env.git(
        env.path(),
        &[
            "clone",
            "-q",
            "--no-local",
            dir.to_str().expect("utf-8"),
            copy.to_str().expect("utf-8"),
        ],
    );
    migrate(&env, &dir, &[]).ok();
    let refs = checkpoint_refs(&env, &dir);
    for commit in refs.values().take(3) {
        env.run(&dir, "git", ["verify-commit", commit]).ok();
    }
    // Ed25519 signatures are deterministic: another clone signs to the same commit IDs.
    for (k, v) in [
        ("gpg.format", "ssh"),
        (
            "gpg.ssh.allowedSignersFile",
            allowed.to_str().expect("utf-8"),
        ),
    ] {
        env.git(&copy, &["config", k, v]);
    }
    env.git(
        &copy,
        &[
            "update-ref",
            LEGACY,
            "refs/remotes/origin/entire/checkpoints/v1",
        ],
    );
    migrate(
        &env,
        &copy,
        &["--signing-key", key.to_str().expect("utf-8")],
    )
    .ok();
    assert_eq!(checkpoint_refs(&env, &copy), refs);
    // --no-sign wins over commit.gpgSign.
    let plain = sample_repo(&env, "plain");
    env.git(&plain, &["config", "commit.gpgSign", "true"]);
    migrate(&env, &plain, &["--no-sign"]).ok();
    let commit = checkpoint_refs(&env, &plain)
        .into_values()
        .next()
        .expect("a ref");
    assert!(!env
        .git(&plain, &["cat-file", "commit", &commit])
        .contains("gpgsig"));
    env.run(&plain, "git", ["verify-commit", &commit]).code(1);
}

#[test]
fn lock_names_the_holder_and_deleted_checkpoints_stay_deleted() {
    let env = TestEnv::new();
    let dir = sample_repo(&env, "r");
    let lock_path = dir.join(".git/entire-migrate.lock");
    let lock = std::fs::File::create(&lock_path).expect("lock file");
    lock.lock().expect("flock");
    std::fs::write(&lock_path, "4242\n").expect("pid");
    let run = migrate(&env, &dir, &[]).code(1);
    assert!(
        run.stderr.contains("PID 4242") && run.stderr.contains("entire-migrate.lock"),
        "{}",
        run.stderr
    );
    drop(lock);

    let (path, _) = legacy_checkpoints(&env, &dir).remove(0);
    let id = path.replace('/', "");
    std::fs::write(
        dir.join(".git/entire-deleted-checkpoints.json"),
        format!(r#"{{"checkpoint_ids":["{id}"]}}"#),
    )
    .expect("write tombstones");
    let run = migrate(&env, &dir, &["--json"]).ok();
    let doc: Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(
        (doc["created"].as_u64(), doc["skipped"].as_u64()),
        (Some(39), Some(1))
    );
    assert!(!checkpoint_refs(&env, &dir).contains_key(&ref_of(&path)));
    assert!(!queued(&dir).contains(&ref_of(&path)));
}

#[test]
fn force_resets_refs_to_the_fresh_migration() {
    let env = TestEnv::new();
    let dir = sample_repo(&env, "r");
    migrate(&env, &dir, &[]).ok();
    let refs = checkpoint_refs(&env, &dir);
    let (name, commit) = refs.iter().next().expect("a ref");
    let tree = env.git(&dir, &["rev-parse", &format!("{commit}^{{tree}}")]);
    let on_top = env.git(
        &dir,
        &["commit-tree", &tree, "-p", commit, "-m", "later write"],
    );
    let empty = env.git(&dir, &["mktree"]);
    let different = env.git(
        &dir,
        &["commit-tree", &empty, "-p", &on_top, "-m", "newer content"],
    );
    env.git(&dir, &["update-ref", name, &different]);
    // A newer write on top of the migrated commit is not regressed by a plain rerun...
    assert_eq!(
        migrate(&env, &dir, &[]).ok().trimmed(),
        "migrated 0, skipped 40, failed 0"
    );
    assert_eq!(checkpoint_refs(&env, &dir)[name], different);
    // ...but --force redoes it from scratch, to exactly the first run's commit.
    let run = migrate(&env, &dir, &["--force"]).ok();
    assert_eq!(run.trimmed(), "migrated 1, skipped 39, failed 0");
    assert_eq!(checkpoint_refs(&env, &dir), refs);
}

/// One legacy commit for `git fast-import`: parents are marks of earlier commits.
struct LegacyCommit {
    parents: Vec<usize>,
    date: i64,
    subject: String,
    files: Vec<(String, Vec<u8>)>,
}

/// Write `commits` (marks 1..) with one `git fast-import`; the last one becomes the legacy branch.
fn fast_import(env: &TestEnv, dir: &Path, commits: &[LegacyCommit]) {
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

fn checkpoint_files(id: &str, transcript_lines: usize) -> Vec<(String, Vec<u8>)> {
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
fn synthetic_legacy(env: &TestEnv, dir: &Path, n: usize) {
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

#[test]
fn man_page_is_current() {
    let env = TestEnv::new();
    let out = env.path().join("man");
    env.entire(env.path(), &["__man", out.to_str().expect("utf-8")])
        .ok();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("man/git-entire-migrate.1");
    let fresh = std::fs::read_to_string(out.join("git-entire-migrate.1")).expect("generated page");
    assert!(
        fresh.contains("\\-\\-signing\\-key"),
        "the page documents the options"
    );
    assert_eq!(
        std::fs::read_to_string(&committed).unwrap_or_default(),
        fresh,
        "man/git-entire-migrate.1 is stale: run `cargo run --bin git-entire -- __man man`"
    );
}
