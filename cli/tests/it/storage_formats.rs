//! The key scenarios on every repository format `git init` can make (SPEC §8): files and reftable ref storage,
//! SHA-1 and SHA-256 objects. Write/show, push through the helper, clone with lazy show, migrate, and `git gc`
//! afterwards (a ref git cannot see would lose its objects there).

use std::path::{Path, PathBuf};

use crate::env::TestEnv;
use crate::fixtures::{path_str, queued, session, set_mode};

/// `git init` flags of each format.
const FORMATS: [(&str, &[&str]); 4] = [
    ("files", &[]),
    ("reftable", &["--ref-format=reftable"]),
    ("sha256", &["--object-format=sha256"]),
    (
        "sha256-reftable",
        &["--object-format=sha256", "--ref-format=reftable"],
    ),
];

fn init(env: &TestEnv, flags: &[&str], dir: &Path, bare: bool) {
    let mut args = vec!["init", "-q", "-b", "main"];
    if bare {
        args.push("--bare");
    }
    args.extend_from_slice(flags);
    args.push(path_str(dir));
    env.git(env.path(), &args);
    if !bare {
        env.git(dir, &["commit", "-q", "--allow-empty", "-m", "initial"]);
    }
}

fn refs(env: &TestEnv, repo: &Path) -> String {
    env.git(
        repo,
        &["for-each-ref", "--format=%(refname)", "refs/entire/"],
    )
}

fn scenario(name: &str, flags: &[&str]) {
    let env = TestEnv::new();
    let dir = session(
        &env,
        "s",
        r#"{"session_id": "fmt-1"}"#,
        b"{\"type\":\"user\"}\n",
    );
    let repo = env.path().join(format!("{name}-work"));
    init(&env, flags, &repo, false);
    set_mode(&repo, Some("refs-v1"));

    // write/show: git itself sees the ref, the queue holds it, gc keeps its objects.
    let id = env
        .entire(&repo, &["write", path_str(&dir)])
        .ok()
        .trimmed()
        .to_string();
    let ref_name = format!("refs/entire/checkpoints/{}/{id}", &id[24..]);
    assert_eq!(refs(&env, &repo), ref_name, "{name}: git sees the ref");
    assert_eq!(queued(&env, &repo), vec![ref_name.clone()], "{name}");
    env.git(&repo, &["gc", "-q", "--prune=now"]);
    let shown = env.entire(&repo, &["show", &id, "0/full.jsonl"]).ok();
    assert_eq!(
        shown.stdout, "{\"type\":\"user\"}\n",
        "{name}: show after gc"
    );
    env.entire(&repo, &["status"]).ok();
    env.entire(&repo, &["fsck"]).ok();

    // push through the helper delivers the checkpoint with the branch and empties the queue.
    let server: PathBuf = env.path().join(format!("{name}-server.git"));
    init(&env, flags, &server, true);
    let link = format!("link\n\nEntire-Checkpoint: {id}\n");
    env.git(&repo, &["commit", "-q", "--allow-empty", "-m", &link]);
    env.git(
        &repo,
        &[
            "push",
            "-q",
            &format!("entire::{}", path_str(&server)),
            "main",
        ],
    );
    assert_eq!(refs(&env, &server), ref_name, "{name}: checkpoint pushed");
    assert!(queued(&env, &repo).is_empty(), "{name}: queue drained");

    // clone through the helper, then show (pulled along or fetched lazily).
    let clone = env.path().join(format!("{name}-clone"));
    env.git(
        env.path(),
        &[
            "clone",
            "-q",
            &format!("entire::{}", path_str(&server)),
            path_str(&clone),
        ],
    );
    set_mode(&clone, Some("refs-v1"));
    let root = env.entire(&clone, &["show", &id]).ok();
    assert!(root.stdout.contains(&id), "{name}: {}", root.stdout);

    // migrate: two checkpoints on the legacy branch become refs; the rerun has nothing left to do.
    let legacy = env.path().join(format!("{name}-legacy"));
    init(&env, flags, &legacy, false);
    let a = env.entire(&legacy, &["write", path_str(&dir)]).ok();
    let b = env.entire(&legacy, &["write", path_str(&dir)]).ok();
    let migrate = |args: &[&str]| {
        env.run(
            &legacy,
            "git",
            ["entire-migrate", "--no-sign"].iter().chain(args),
        )
        .ok()
    };
    migrate(&[]);
    let migrated = refs(&env, &legacy);
    for id in [a.trimmed(), b.trimmed()] {
        assert!(migrated.contains(id), "{name}: {id} migrated: {migrated}");
    }
    assert!(
        migrate(&["--json"]).stdout.contains("\"skipped\": 2"),
        "{name}: rerun"
    );
    env.git(&legacy, &["gc", "-q", "--prune=now"]);
    env.git(&legacy, &["fsck", "--no-progress"]);
}

#[test]
fn every_repository_format_writes_pushes_clones_and_migrates() {
    for (name, flags) in FORMATS {
        scenario(name, flags);
    }
}

/// Migration refuses nothing and pushes stage correctly on reftable: the refs land where git reads them.
#[test]
fn reftable_ref_transactions_keep_compare_and_swap() {
    let env = TestEnv::new();
    let repo = env.path().join("rt");
    init(&env, &["--ref-format=reftable"], &repo, false);
    set_mode(&repo, Some("refs-v1"));
    let dirs: Vec<PathBuf> = (0..4)
        .map(|i| {
            session(
                &env,
                &format!("c{i}"),
                &format!(r#"{{"session_id": "sess-{i}"}}"#),
                b"t\n",
            )
        })
        .collect();
    let id = "01KVBJCWYA4YW6J5M9GP655HZN";
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
        assert!(c.wait().expect("writer exits").success(), "a writer failed");
    }
    let ref_name = format!("refs/entire/checkpoints/ZN/{id}");
    assert_eq!(
        env.git(&repo, &["rev-list", "--count", &ref_name]),
        "4",
        "one commit per write, none lost to a blind overwrite"
    );
    assert!(!repo.join(".git").join(&ref_name).exists(), "no loose file");
}

/// One `git entire write` into every store at once (ref store primary, legacy branch and v2 mirrors): plain git
/// finds every object the write made, reads each stored file back byte for byte, and `git fsck` finds nothing
/// wrong — on files + SHA-1 and reftable + SHA-256. The objects are in place before any ref points at them
/// (reftable's `git update-ref` refuses a missing object).
#[test]
fn one_write_into_every_store_lands_objects_plain_git_reads() {
    for (name, flags) in [FORMATS[0], FORMATS[3]] {
        let env = TestEnv::new();
        let repo = env.path().join(name);
        init(&env, flags, &repo, false);
        crate::v2_write::settings(
            &repo,
            r#"{"strategy_options": {"checkpoint_store": "refs-v1-mirror", "checkpoints_v2": true}}"#,
        );
        let transcript = crate::v2_write::claude_transcript(name, 3);
        let dir = crate::v2_write::claude_session(&env, "s", "sess-objects", &transcript);
        let id = "0a1b2c3d4e5f";
        let out = env
            .entire(&repo, &["write", "--json", "--id", id, path_str(&dir)])
            .ok();
        assert!(!out.stdout.contains("failed"), "{name}: {}", out.stdout);
        let cp = "0a/1b2c3d4e5f";
        let cat = |spec: &str| env.git(&repo, &["cat-file", "-p", spec]);
        let reads = [
            (
                format!("refs/entire/checkpoints/5f/{id}:0/full.jsonl"),
                true,
            ),
            (format!("entire/checkpoints/v1:{cp}/0/full.jsonl"), true),
            (
                format!("{}:{cp}/0/raw_transcript", crate::v2_write::CURRENT),
                true,
            ),
            (
                format!("{}:{cp}/0/prompt.txt", crate::v2_write::MAIN),
                false,
            ),
        ];
        for (spec, is_transcript) in &reads {
            let want = if *is_transcript {
                transcript.trim_end()
            } else {
                "prompt of s"
            };
            assert_eq!(cat(spec), want, "{name}: {spec}");
        }
        let compact = cat(&format!(
            "{}:{cp}/0/transcript.jsonl",
            crate::v2_write::MAIN
        ));
        assert!(
            compact.contains(&format!("answer 2 of {name}")),
            "{name}: {compact}"
        );
        assert!(!compact.contains("secret"), "{name}: thinking removed");
        let fsck = env
            .run(
                &repo,
                "git",
                ["fsck", "--full", "--strict", "--no-dangling"],
            )
            .ok();
        assert_eq!(fsck.stderr.trim(), "", "{name}: fsck is clean");
        let hash_len = if name.starts_with("sha256") { 64 } else { 40 };
        let head = env.git(&repo, &["rev-parse", crate::v2_write::MAIN]);
        assert_eq!(head.len(), hash_len, "{name}: object format");
    }
}
