//! One setup per transport the helper serves: file://, git daemon, smart HTTP (plain and behind basic auth
//! with a credential helper), ssh through a fake `GIT_SSH_COMMAND`, and ssh to a real `sshd`. Tests get a bare "server" repository and
//! its URL, and can look at the server's log.

use std::path::{Path, PathBuf};

use crate::env::TestEnv;
use crate::servers::{self, Auth, Server};

/// The transports under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Daemon,
    Http,
    HttpAuth,
    /// ssh through a fake `GIT_SSH_COMMAND` that runs the command locally.
    Ssh,
    /// ssh to a real OpenSSH server on loopback.
    Sshd,
}

/// A test environment with one served bare repository.
pub struct Served {
    pub env: TestEnv,
    pub kind: Kind,
    /// Directory served by the server; bare repositories live directly below it.
    pub root: PathBuf,
    pub server: Option<Server>,
    /// The fake ssh's command log (ssh only).
    pub ssh_log: Option<PathBuf>,
}

impl Served {
    /// Start `kind` with an empty bare repository `server.git` seeded with one commit on `main`.
    pub fn new(kind: Kind) -> Self {
        let env = TestEnv::new();
        let root = env.path().join("srv");
        std::fs::create_dir_all(&root).expect("served root");
        let mut ssh_log = None;
        let server = match kind {
            Kind::File => None,
            Kind::Ssh => {
                ssh_log = Some(servers::fake_ssh(&env));
                None
            }
            Kind::Daemon => Some(servers::git_daemon(&env, &root)),
            Kind::Sshd => Some(servers::sshd(&env)),
            Kind::Http => Some(servers::http(&env, &root, None)),
            Kind::HttpAuth => {
                let auth = Auth {
                    user: "alice",
                    password: "s3cret",
                };
                let s = servers::http(
                    &env,
                    &root,
                    Some(Auth {
                        user: auth.user,
                        password: auth.password,
                    }),
                );
                servers::store_credentials(&env, &s, &auth);
                Some(s)
            }
        };
        let served = Served {
            env,
            kind,
            root,
            server,
            ssh_log,
        };
        served.bare("server.git");
        let seed = served.env.repo("seed");
        served.push_plain(&seed, &["main"]);
        served
    }

    /// Create another bare repository below the served root.
    pub fn bare(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        self.env.init_bare(&dir);
        dir
    }

    /// Push `refspecs` from the repository `from` straight to `server.git` (plain git, no helper).
    pub fn push_plain(&self, from: &Path, refspecs: &[&str]) {
        let server = self.path("server.git");
        let mut args = vec!["push", "-q", server.to_str().expect("utf-8 path")];
        args.extend_from_slice(refspecs);
        self.env.git(from, &args);
    }

    /// Local path of a served repository.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The URL of a served repository for this transport (without `entire::`).
    pub fn url(&self, name: &str) -> String {
        match self.kind {
            Kind::File => format!("file://{}", self.path(name).display()),
            Kind::Ssh => format!("ssh://fakehost{}", self.path(name).display()),
            Kind::Sshd => format!(
                "{}{}",
                self.server.as_ref().expect("sshd").base,
                self.path(name).display()
            ),
            Kind::Daemon | Kind::Http | Kind::HttpAuth => {
                self.server.as_ref().expect("server").url(name)
            }
        }
    }

    /// The server's log (daemon log, HTTP access log, fake-ssh command log); empty for file://.
    pub fn log(&self) -> String {
        match (&self.server, &self.ssh_log) {
            (Some(s), _) => s.log_text(),
            (None, Some(p)) => std::fs::read_to_string(p).unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// Number of connections of any kind (listings, fetches, pushes) the server saw so far; `None` for file://
    /// and HTTP (one connection per request there; count requests instead).
    pub fn connections(&self) -> Option<usize> {
        let log = self.log();
        match self.kind {
            Kind::File | Kind::Http | Kind::HttpAuth => None,
            Kind::Daemon => Some(log.lines().filter(|l| l.contains("] Request ")).count()),
            Kind::Ssh => Some(log.lines().count()),
            Kind::Sshd => Some(servers::count_ssh_sessions(&log)),
        }
    }

    /// Number of receive-pack connections (pushes) the server saw so far; `None` for file:// and sshd (whose
    /// log does not name the command: use [`Served::connections`]).
    pub fn push_connections(&self) -> Option<usize> {
        let log = self.log();
        match self.kind {
            Kind::File | Kind::Sshd => None,
            Kind::Daemon => Some(
                log.lines()
                    .filter(|l| l.contains("Request receive-pack"))
                    .count(),
            ),
            Kind::Http | Kind::HttpAuth => {
                Some(servers::count_requests(&log, "POST", "git-receive-pack"))
            }
            Kind::Ssh => Some(
                log.lines()
                    .filter(|l| l.contains("git-receive-pack"))
                    .count(),
            ),
        }
    }

    /// Number of upload-pack connections (fetches and listings) the server saw so far; `None` for file:// and
    /// sshd.
    pub fn fetch_connections(&self) -> Option<usize> {
        let log = self.log();
        match self.kind {
            Kind::File | Kind::Sshd => None,
            Kind::Daemon => Some(
                log.lines()
                    .filter(|l| l.contains("Request upload-pack"))
                    .count(),
            ),
            Kind::Http | Kind::HttpAuth => {
                Some(servers::count_requests(&log, "POST", "git-upload-pack"))
            }
            Kind::Ssh => Some(
                log.lines()
                    .filter(|l| l.contains("git-upload-pack"))
                    .count(),
            ),
        }
    }
}

impl Served {
    /// Clone `server.git` with its plain URL into `name` and route pushes through the helper
    /// (`remote.origin.pushurl = entire::<url>`), as `git entire install` does.
    pub fn clone_local(&self, name: &str) -> PathBuf {
        let url = self.url("server.git");
        self.env.git(self.env.path(), &["clone", "-q", &url, name]);
        let dir = self.env.path().join(name);
        self.env.git(
            &dir,
            &[
                "remote",
                "set-url",
                "--push",
                "origin",
                &format!("entire::{url}"),
            ],
        );
        dir
    }

    /// Install a hook script in a served repository.
    pub fn hook(&self, repo: &str, name: &str, body: &str) {
        let path = self.path(repo).join("hooks").join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write hook");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .expect("chmod hook");
        }
    }
}
