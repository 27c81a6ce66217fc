//! The one hermetic test environment: every test drives real `git` and our freshly built binaries through it.
//!
//! It clears `GIT_*` and other ambient variables, points global and system config at empty files, pins
//! author/committer names and dates, `TZ`, `LC_ALL`, `HOME`, and puts the built binaries first on `PATH`.

#![allow(dead_code)] // a shared toolbox: not every test module uses every helper

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// Directory holding the freshly built `git-entire`, `git-entire-migrate`, `git-remote-entire`.
pub fn bin_dir() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_git-entire"));
    let dir = exe.parent().expect("binary has a parent dir").to_path_buf();
    // cargo builds every binary of this package (all three) before it runs the integration tests.
    dir
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A sealed-off playground: a temp dir with `home/`, empty config files and a fixed environment.
pub struct TestEnv {
    pub root: tempfile::TempDir,
    date: AtomicU64,
    /// Extra variables for every command (e.g. `GIT_SSH_COMMAND`), set with [`TestEnv::set_env`].
    extra: std::sync::Mutex<Vec<(String, String)>>,
}

/// Result of running a command, with helpers for assertions.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
    pub stdout_bytes: Vec<u8>,
}

impl Run {
    pub fn from_output(out: Output) -> Self {
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            stdout_bytes: out.stdout,
        }
    }

    /// Panic with full output unless the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.status, 0,
            "command failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Panic unless the command exited with `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Self {
        assert_eq!(
            self.status, code,
            "unexpected exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn trimmed(&self) -> &str {
        self.stdout.trim()
    }
}

impl TestEnv {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix(&format!(
                "entire-it-{}-",
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ))
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(root.path().join("home")).expect("home dir");
        std::fs::write(root.path().join("gitconfig-global"), "").expect("global config");
        std::fs::write(root.path().join("gitconfig-system"), "").expect("system config");
        TestEnv {
            root,
            date: AtomicU64::new(1_767_225_600), // 2026-01-01T00:00:00Z
            extra: Default::default(),
        }
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// A command with the hermetic environment applied, run in `cwd`.
    pub fn cmd(&self, program: impl AsRef<OsStr>, cwd: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(cwd);
        c.env_clear();
        let path = format!(
            "{}:{}",
            bin_dir().display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
        );
        // Each command gets a date one second later than the previous one: deterministic and ordered.
        let date = self.date.fetch_add(1, Ordering::Relaxed);
        c.env("PATH", path)
            .env("HOME", self.path().join("home"))
            .env("GIT_CONFIG_GLOBAL", self.path().join("gitconfig-global"))
            .env("GIT_CONFIG_SYSTEM", self.path().join("gitconfig-system"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "A U Thor")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_COMMITTER_NAME", "C O Mitter")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_AUTHOR_DATE", format!("@{date} +0000"))
            .env("GIT_COMMITTER_DATE", format!("@{date} +0000"))
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_PROTOCOL_FROM_USER", "1")
            .env("TZ", "UTC")
            .env("LC_ALL", "C")
            .env("LANG", "C")
            .stdin(Stdio::null());
        if let Ok(v) = std::env::var("ENTIRE_LOG") {
            c.env("ENTIRE_LOG", v);
        }
        for (k, v) in self.extra.lock().expect("env lock").iter() {
            c.env(k, v);
        }
        c
    }

    /// Set `key=value` for every later command of this environment.
    pub fn set_env(&self, key: &str, value: &str) {
        let mut extra = self.extra.lock().expect("env lock");
        extra.retain(|(k, _)| k != key);
        extra.push((key.to_string(), value.to_string()));
    }

    /// Run `program args…` in `cwd`.
    pub fn run<I, S>(&self, cwd: &Path, program: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let out = self
            .cmd(program, cwd)
            .args(args)
            .output()
            .expect("command starts");
        Run::from_output(out)
    }

    /// `git args…` in `cwd`, which must succeed; returns trimmed stdout.
    #[track_caller]
    pub fn git(&self, cwd: &Path, args: &[&str]) -> String {
        self.run(cwd, "git", args).ok().trimmed().to_string()
    }

    /// `git args…` in `cwd` with `input` on stdin, which must succeed; returns trimmed stdout.
    #[track_caller]
    pub fn git_stdin(&self, cwd: &Path, args: &[&str], input: &str) -> String {
        let mut child = self
            .cmd("git", cwd)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("git starts");
        std::io::Write::write_all(
            &mut child.stdin.take().expect("piped stdin"),
            input.as_bytes(),
        )
        .expect("feed stdin");
        Run::from_output(child.wait_with_output().expect("git exits"))
            .ok()
            .trimmed()
            .to_string()
    }

    /// `git entire args…` in `cwd` (any exit status).
    pub fn entire(&self, cwd: &Path, args: &[&str]) -> Run {
        self.run(
            cwd,
            "git",
            std::iter::once("entire").chain(args.iter().copied()),
        )
    }

    /// A fresh non-bare repository with one commit on `main`.
    pub fn repo(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        self.git(
            self.path(),
            &[
                "init",
                "-q",
                "-b",
                "main",
                dir.to_str().expect("utf-8 path"),
            ],
        );
        std::fs::write(dir.join("README"), "hello\n").expect("write file");
        self.git(&dir, &["add", "README"]);
        self.git(&dir, &["commit", "-q", "-m", "initial"]);
        dir
    }

    /// A fresh bare repository.
    pub fn bare(&self, name: &str) -> PathBuf {
        let dir = self.path().join(name);
        self.init_bare(&dir);
        dir
    }

    /// `git init --bare -b main` at `dir`.
    pub fn init_bare(&self, dir: &Path) {
        let dir = dir.to_str().expect("utf-8 path");
        self.git(self.path(), &["init", "-q", "--bare", "-b", "main", dir]);
    }
}

/// The fixture bundle with 40 real checkpoints (`tests/fixtures/`, committed with the tests).
pub fn sample_bundle() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/entire-cli-v1-sample.bundle");
    assert!(p.exists(), "fixture bundle missing at {}", p.display());
    p
}
