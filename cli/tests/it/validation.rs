//! Bad input never gets in: hostile session fields, odd refs under the checkpoint namespace (local and served
//! by a remote), settings files that are not regular files. Each case is driven through the real commands.

use std::path::Path;

use crate::env::TestEnv;
use crate::fixtures::{path_str, refs, session, set_mode};
use crate::migrate::{checkpoint_refs, migrate, sample_repo};

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
