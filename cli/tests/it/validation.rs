//! Bad input never gets in: hostile session fields, odd refs under the checkpoint namespace (local and served
//! by a remote), settings files that are not regular files. Each case is driven through the real commands.

use std::path::Path;

use crate::env::TestEnv;
use crate::fixtures::{
    commit_linking, cp_ref, hex_id, path_str, refs, session, set_mode, write_checkpoint,
};
use crate::migrate::{checkpoint_refs, migrate, sample_repo};
use crate::transports::{Kind, Served};

const NS: &str = "refs/entire/checkpoints/";

/// Every commit reachable from the checkpoint namespace and the legacy branch, with its full message.
fn all_messages(env: &TestEnv, repo: &Path) -> String {
    env.run(repo, "git", ["log", "--all", "--format=%B"]).stdout
}

#[test]
fn hostile_session_ids_are_refused_before_anything_is_written() {
    let env = TestEnv::new();
    for mode in [None, Some("refs-v1")] {
        let repo = env.repo(&format!("r-{}", mode.unwrap_or("legacy")));
        set_mode(&repo, mode);
        let cases = [
            (
                "newline",
                r#""s1\nEntire-Checkpoint: 0123456789ab\nSigned-off-by: Mallory <m@x>""#,
            ),
            ("nul", r#""s\u0000x""#),
            ("slash", r#""../../etc""#),
            ("backslash", r#""a\\b""#),
            ("colon", r#""a:b""#),
            ("glob", r#""a*""#),
            ("dash", r#""-rf""#),
        ];
        for (name, sid) in cases {
            let dir = session(&env, name, &format!("{{\"session_id\": {sid}}}"), b"{}\n");
            let run = env.entire(&repo, &["write", path_str(&dir)]).code(1);
            assert!(
                run.stderr.contains("metadata.json") && run.stderr.contains("session ID"),
                "{name}: {}",
                run.stderr
            );
        }
        let agent = session(
            &env,
            "agent",
            r#"{"session_id": "ok", "agent": "x\nEntire-Checkpoint: 0123456789ab"}"#,
            b"{}\n",
        );
        env.entire(&repo, &["write", path_str(&agent)]).code(1);
        let messages = all_messages(&env, &repo);
        assert!(!messages.contains("Signed-off-by"), "{messages}");
        assert!(!messages.contains("0123456789ab"), "{messages}");
        assert!(refs(&env, &repo, NS).is_empty());
    }
}

#[test]
fn migration_reports_and_skips_odd_local_refs() {
    let env = TestEnv::new();
    let repo = sample_repo(&env, "odd");
    // A non-ASCII name whose last two bytes are inside one character, and a symbolic ref at the canonical ref
    // name of one legacy checkpoint.
    let head = env.git(&repo, &["rev-parse", "HEAD"]);
    env.git(
        &repo,
        &["update-ref", "refs/entire/checkpoints/xx/abc€", &head],
    );
    let first = crate::migrate::legacy_checkpoints(&env, &repo)[0]
        .0
        .replace('/', "");
    let taken = format!("{NS}{}/{first}", &first[first.len() - 2..]);
    env.git(&repo, &["symbolic-ref", &taken, "refs/heads/main"]);
    let run = migrate(&env, &repo, &[]).code(1);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.stderr.contains(&taken), "{}", run.stderr);
    let migrated = checkpoint_refs(&env, &repo);
    // 39 of 40 migrated, plus the two odd refs left as they were.
    assert_eq!(migrated.len(), 41, "{migrated:?}");
    assert_eq!(
        env.git(&repo, &["symbolic-ref", &taken]),
        "refs/heads/main",
        "the symbolic ref is left alone"
    );
}

#[test]
fn settings_files_must_be_small_regular_files() {
    let env = TestEnv::new();
    let repo = env.repo("settings");
    std::fs::create_dir_all(repo.join(".entire")).expect("mkdir");
    let file = repo.join(".entire/settings.json");
    let check = |what: &str| {
        // `timeout`: before the fix a FIFO hangs and /dev/zero reads until memory runs out.
        let run = env
            .run(&repo, "timeout", ["20", "git", "entire", "status"])
            .code(1);
        assert!(
            run.stderr.contains(".entire/settings.json") && run.stderr.contains(what),
            "{what}: {}",
            run.stderr
        );
    };
    std::os::unix::fs::symlink("/dev/zero", &file).expect("symlink");
    check("symbolic link");
    std::fs::remove_file(&file).expect("rm");
    let fifo = env.run(&repo, "mkfifo", [path_str(&file)]);
    assert_eq!(fifo.status, 0, "{}", fifo.stderr);
    check("not a regular file");
    std::fs::remove_file(&file).expect("rm");
    let big = format!("{{\"pad\": \"{}\"}}", "x".repeat(2 << 20));
    std::fs::write(&file, big).expect("write");
    check("larger than");
    std::fs::write(&file, "{}").expect("write");
    env.entire(&repo, &["status"]).ok();
}

/// A served repository whose checkpoint namespace holds one valid checkpoint and hostile refs: a valid name
/// pointing at a blob, a wrong shard, a lowercase ULID, extra segments and a non-ASCII name (all at commits).
/// Returns (served, the valid ID, the ID whose ref is a blob, the hostile ref names).
fn hostile_server() -> (Served, String, String, Vec<String>) {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let seed = env.path().join("seed");
    let good = hex_id(1);
    let commit = write_checkpoint(env, &seed, &good, None);
    commit_linking(env, &seed, "linked", &[&good]);
    s.push_plain(&seed, &["main", &format!("{NS}*:{NS}*")]);
    let server = s.path("server.git");
    let blob = env.git_stdin(&server, &["hash-object", "-w", "--stdin"], "not a commit\n");
    let blob_id = hex_id(2);
    let hostile = vec![
        cp_ref(&blob_id),
        format!("{NS}zz/{}", hex_id(3)),
        format!("{NS}av/01arz3ndektsv4rrffq69g5fav"),
        format!("{NS}cd/x/{}", hex_id(4)),
        format!("{NS}xx/abc€"),
    ];
    env.git(&server, &["update-ref", &hostile[0], &blob]);
    for name in &hostile[1..] {
        env.git(&server, &["update-ref", name, &commit]);
    }
    (s, good, blob_id, hostile)
}

#[test]
fn refs_a_remote_serves_are_checked_before_they_are_stored() {
    let (s, good, blob_id, hostile) = hostile_server();
    let env = &s.env;
    let url = s.url("server.git");
    // Pull-along of everything: only the valid checkpoint lands, each hostile ref is reported once.
    let run = env
        .run(
            env.path(),
            "git",
            [
                "-c",
                "entire.fetchCheckpoints=all",
                "clone",
                &format!("entire::{url}"),
                "all",
            ],
        )
        .ok();
    let local = env.path().join("all");
    let got: Vec<String> = refs(env, &local, NS).into_iter().map(|(n, _)| n).collect();
    assert_eq!(got, vec![cp_ref(&good)], "{}", run.stderr);
    for name in &hostile {
        assert_eq!(
            run.stderr.matches(name.as_str()).count(),
            1,
            "{name}: {}",
            run.stderr
        );
    }
    // Lazy fetch of the ID whose ref is a blob: refused, not "fetched", no local ref.
    let run = env.entire(&local, &["fetch", &blob_id]).code(1);
    assert!(run.stderr.contains("not a commit"), "{}", run.stderr);
    assert!(!run.stdout.contains("fetched"), "{}", run.stdout);
    assert!(refs(env, &local, NS).len() == 1);
    // push --reconcile never pushes on a local ref that is not a commit under a checkpoint name.
    let blob = env.git_stdin(&local, &["hash-object", "-w", "--stdin"], "local blob\n");
    env.git(&local, &["update-ref", &cp_ref(&blob_id), &blob]);
    let other = s.bare("other.git");
    let run = env
        .entire(&local, &["push", "--reconcile", path_str(&other)])
        .ok();
    assert!(run.stderr.contains(&cp_ref(&blob_id)), "{}", run.stderr);
    let pushed: Vec<String> = refs(env, &other, NS).into_iter().map(|(n, _)| n).collect();
    assert_eq!(pushed, vec![cp_ref(&good)]);
}

/// Every file under `dir` with its length and modification time.
fn tree_state(dir: &Path) -> Vec<(std::path::PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let m = e.metadata().expect("metadata");
            if m.is_dir() {
                todo.push(e.path());
            } else {
                out.push((e.path(), m.len(), m.modified().expect("mtime")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn read_commands_write_nothing_and_show_names_a_missing_remote() {
    let env = TestEnv::new();
    let repo = env.repo("ro");
    set_mode(&repo, Some("refs-v1"));
    let dir = session(&env, "s", r#"{"session_id": "s-1"}"#, b"{}\n");
    let id = env
        .entire(&repo, &["write", path_str(&dir)])
        .ok()
        .trimmed()
        .to_string();
    crate::fixtures::commit_linking(&env, &repo, "linked", &[&id]);
    // Read commands must work on a repository they cannot write to (tests run as root, so "cannot write" is
    // checked as "did not write").
    let before = tree_state(&repo.join(".git"));
    env.entire(&repo, &["status"]).ok();
    env.entire(&repo, &["show", &id]).ok();
    env.entire(&repo, &["list", "--no-fetch"]).ok();
    assert_eq!(
        tree_state(&repo.join(".git")),
        before,
        "a read command wrote to .git"
    );
    // A checkpoint that is neither local nor fetchable: the message says there is no remote.
    let run = env.entire(&repo, &["show", "0123456789ab"]).code(1);
    assert!(
        run.stderr.contains("no remote to fetch it from"),
        "{}",
        run.stderr
    );
}

/// Write raw bytes as an object of `kind` (no checks: `--literally`).
fn raw_object(env: &TestEnv, repo: &Path, kind: &str, bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = env
        .cmd("git", repo)
        .args(["hash-object", "-t", kind, "--literally", "-w", "--stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("feed");
    let out = child.wait_with_output().expect("git exits");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A raw tree entry: `<mode> <name>\0<binary oid>`.
fn entry(mode: &str, name: &[u8], hex: &str) -> Vec<u8> {
    let mut out = format!("{mode} ").into_bytes();
    out.extend_from_slice(name);
    out.push(0);
    out.extend(
        (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex")),
    );
    out
}

#[test]
fn fsck_flags_odd_tree_entries_symlinks_and_non_commit_refs() {
    let env = TestEnv::new();
    let repo = env.repo("fsck");
    let commit_of = |tree: &str| env.git(&repo, &["commit-tree", tree, "-m", "cp"]);
    let (a, b, c) = (hex_id(1), hex_id(2), hex_id(3));
    let meta = |id: &str| {
        env.git_stdin(
            &repo,
            &["hash-object", "-w", "--stdin"],
            &format!("{{\"checkpoint_id\":\"{id}\"}}\n"),
        )
    };
    // a: a ".." entry next to a valid metadata.json.
    let mut tree = entry("40000", b"..", &env.git(&repo, &["mktree"]).to_string());
    tree.extend(entry("100644", b"metadata.json", &meta(&a)));
    let t = raw_object(&env, &repo, "tree", &tree);
    env.git(&repo, &["update-ref", &cp_ref(&a), &commit_of(&t)]);
    // b: metadata.json is a symbolic link.
    let t = env.git_stdin(
        &repo,
        &["mktree"],
        &format!("120000 blob {}\tmetadata.json\n", meta(&b)),
    );
    env.git(&repo, &["update-ref", &cp_ref(&b), &commit_of(&t)]);
    // c: the ref points at a blob.
    env.git(&repo, &["update-ref", &cp_ref(&c), &meta(&c)]);
    let run = env.entire(&repo, &["fsck"]).code(1);
    let has = |ref_name: &str, what: &str| {
        run.stdout
            .lines()
            .any(|l| l.starts_with(ref_name) && l.contains(what))
    };
    assert!(
        has(&cp_ref(&a), "\"..\" is not a plain name"),
        "{}",
        run.stdout
    );
    assert!(
        has(&cp_ref(&b), "metadata.json is a symbolic link"),
        "{}",
        run.stdout
    );
    assert!(has(&cp_ref(&c), "not a commit"), "{}", run.stdout);
}

/// Arbitrary JSON of the settings' shape (strings drawn from valid and invalid values).
fn settings_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    let word = prop_oneof![
        Just("refs-v1".to_string()),
        Just("refs-v1-mirror".to_string()),
        Just("git-branch".to_string()),
        Just("git-refs".to_string()),
        ".{0,12}",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        word.prop_map(serde_json::Value::from),
    ];
    let key = prop_oneof![
        Just("strategy_options".to_string()),
        Just("checkpoint_store".to_string()),
        Just("checkpoints".to_string()),
        Just("primary".to_string()),
        Just("mirrors".to_string()),
        Just("type".to_string()),
        Just("checkpoint_remote".to_string()),
        Just("checkpoints_v2".to_string()),
        Just("checkpoints_version".to_string()),
        "[a-z_]{1,8}",
    ];
    leaf.prop_recursive(4, 32, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(key.clone(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    /// Any settings document and any environment: a result or an error naming the file, never a panic.
    #[test]
    fn arbitrary_settings_never_panic(doc in settings_json(), env_value in proptest::option::of(".{0,16}")) {
        let serde_json::Value::Object(map) = serde_json::json!({"x": doc, "strategy_options": doc, "checkpoints": doc}) else {
            unreachable!("an object literal");
        };
        let origin = Path::new("/repo/.entire/settings.json");
        let result = entire::store::settings::interpret(&map, origin, |_| env_value.clone());
        if let Err(e) = result {
            let text = e.to_string();
            proptest::prop_assert!(text.contains("settings.json") || text.contains("environment variable"), "{}", text);
        }
    }
}
