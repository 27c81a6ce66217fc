//! `git entire-migrate` options: `--author`, remote-tracking source, ssh signing, the lock, the deleted
//! list, `--force`, and the man page.

use std::path::Path;

use serde_json::Value;

use crate::env::{sample_bundle, TestEnv};
use crate::migrate::*;

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

#[test]
fn man_page_is_current() {
    let env = TestEnv::new();
    let out = env.path().join("man");
    env.entire(env.path(), &["__man", out.to_str().expect("utf-8")])
        .ok();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../man/git-entire-migrate.1");
    let fresh = std::fs::read_to_string(out.join("git-entire-migrate.1")).expect("generated page");
    assert!(
        fresh.contains("\\-\\-signing\\-key"),
        "the page documents the options"
    );
    assert_eq!(
        std::fs::read_to_string(&committed).unwrap_or_default(),
        fresh,
        "man/git-entire-migrate.1 is stale: run `cargo run -p entire-cli --bin git-entire -- __man man`"
    );
}
