//! `scripts/install` as a user runs it: binaries and man pages land in a prefix, git finds the manuals through
//! `git <cmd> --help`, and `--undo` takes everything back out.

use std::path::Path;

use crate::env::{bin_dir, TestEnv};

fn install_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install")
}

/// `program args…` with only the installed prefix (not the build directory) in front of the system `PATH`.
fn run_installed(env: &TestEnv, prefix: &Path, program: &str, args: &[&str]) -> crate::env::Run {
    let system = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let out = env
        .cmd(program, env.path())
        .args(args)
        .env("PATH", format!("{}:{system}", prefix.join("bin").display()))
        .env("MANPATH", prefix.join("share/man"))
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .expect("run");
    crate::env::Run::from_output(out)
}

#[test]
fn install_puts_binaries_and_manuals_where_git_finds_them_and_undo_removes_them() {
    let env = TestEnv::new();
    let prefix = env.path().join("prefix");
    let script = install_script();
    let from = bin_dir();
    let args = [
        "--prefix",
        prefix.to_str().expect("utf-8"),
        "--from",
        from.to_str().expect("utf-8"),
    ];
    let run = env
        .run(env.path(), script.to_str().expect("utf-8"), args)
        .ok();
    for f in [
        "bin/git-entire",
        "bin/git-entire-migrate",
        "bin/git-remote-entire",
        "share/man/man1/git-entire.1",
        "share/man/man1/git-entire-migrate.1",
        "share/man/man1/git-remote-entire.1",
    ] {
        assert!(
            prefix.join(f).is_file(),
            "{f} not installed\n{}",
            run.stdout
        );
    }

    // git turns `git entire --help` into `git help entire`, which opens the manual page.
    for (program, args, title) in [
        ("git", &["entire", "--help"][..], "git-entire(1)"),
        ("git", &["help", "entire"][..], "git-entire(1)"),
        (
            "git",
            &["entire-migrate", "--help"][..],
            "git-entire-migrate(1)",
        ),
        ("man", &["git-remote-entire"][..], "git-remote-entire(1)"),
    ] {
        let r = run_installed(&env, &prefix, program, args);
        assert_eq!(r.status, 0, "{program} {args:?}: {}", r.stderr);
        assert!(
            r.stdout.contains(title),
            "{program} {args:?} shows no {title}:\n{}",
            r.stdout
        );
    }
    // The installed binaries are the ones git runs.
    let r = run_installed(&env, &prefix, "git", &["entire", "--version"]);
    assert!(r.stdout.starts_with("git-entire "), "{}", r.stdout);

    env.run(
        env.path(),
        script.to_str().expect("utf-8"),
        ["--prefix", prefix.to_str().expect("utf-8"), "--undo"],
    )
    .ok();
    assert!(!prefix.exists(), "undo leaves the prefix it created behind");
}

#[test]
fn undo_keeps_directories_it_did_not_create() {
    let env = TestEnv::new();
    let prefix = env.path().join("prefix");
    std::fs::create_dir_all(prefix.join("bin")).expect("mkdir");
    std::fs::write(prefix.join("bin/other-tool"), "").expect("write");
    let script = install_script();
    let p = prefix.to_str().expect("utf-8");
    let from = bin_dir();
    env.run(
        env.path(),
        script.to_str().expect("utf-8"),
        ["--prefix", p, "--from", from.to_str().expect("utf-8")],
    )
    .ok();
    env.run(
        env.path(),
        script.to_str().expect("utf-8"),
        ["--prefix", p, "--undo"],
    )
    .ok();
    assert!(prefix.join("bin/other-tool").is_file());
    assert!(!prefix.join("bin/git-entire").exists());
    assert!(!prefix.join("share").exists());
    let again = env.run(
        env.path(),
        script.to_str().expect("utf-8"),
        ["--prefix", p, "--undo"],
    );
    assert_eq!(
        again.status, 1,
        "a second undo has nothing to remove: {}",
        again.stderr
    );
}
