//! Real git servers on loopback for transport tests, each started on a free port and stopped on drop:
//! `git daemon`, lighttpd + `git-http-backend` (optionally behind basic auth), a real OpenSSH `sshd` (throwaway
//! host and user keys, key authentication only, `AcceptEnv GIT_PROTOCOL`), and ssh through a fake
//! `GIT_SSH_COMMAND` that runs the remote command locally (as git's own `test-fake-ssh` does).
//!
//! Every server writes a log the tests read to count connections: the daemon's `--verbose` log, lighttpd's
//! access log, sshd's `LogLevel VERBOSE` log (one `Accepted publickey` line per connection), the fake ssh's
//! command log.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::TestEnv;

/// A running server process.
pub struct Server {
    child: Child,
    pub port: u16,
    /// URL prefix; append a repository name relative to the served root.
    pub base: String,
    /// The log the server appends to (daemon log, access log).
    pub log: PathBuf,
}

impl Server {
    /// URL of `repo` (a path relative to the served root).
    pub fn url(&self, repo: &str) -> String {
        format!("{}/{repo}", self.base)
    }

    /// Current log contents.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stop the server now (for "remote down" tests).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Wait until `port` accepts connections; `None` if the process died first (port taken, bad config).
fn wait_ready(child: &mut Child, port: u16) -> Option<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(());
        }
        if let Ok(Some(_)) = child.try_wait() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Start with a fresh port up to three times (another test may grab a port between probe and bind).
fn start(mut spawn: impl FnMut(u16) -> (Child, String, PathBuf)) -> Server {
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        let (mut child, base, log) = spawn(port);
        if wait_ready(&mut child, port).is_some() {
            return Server {
                child,
                port,
                base,
                log,
            };
        }
        let _ = child.kill();
        let _ = child.wait();
        last = std::fs::read_to_string(&log).unwrap_or_default();
    }
    panic!("server did not start; last log:\n{last}");
}

/// `git daemon` serving every repository below `root` (read and write).
pub fn git_daemon(env: &TestEnv, root: &Path) -> Server {
    // The dashed binary itself: `git daemon` would run it as a child that outlives a kill of the wrapper.
    let daemon = format!("{}/git-daemon", exec_path(env));
    start(|port| {
        let log = env.path().join(format!("daemon-{port}.log"));
        let file = std::fs::File::create(&log).expect("daemon log");
        let child = env
            .cmd(&daemon, root)
            .args([
                "--reuseaddr",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", root.display()),
                "--export-all",
                "--enable=receive-pack",
                "--informative-errors",
                "--verbose",
                "--log-destination=stderr",
            ])
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("git daemon starts");
        (child, format!("git://127.0.0.1:{port}"), log)
    })
}

/// A real `sshd` on loopback serving the filesystem as the current user, and the client side wired into `env`:
/// `GIT_SSH_COMMAND` uses a fresh user key and a known-hosts file holding only the fresh host key (strict
/// checking, no agent, no user config). URLs look like `ssh://<user>@127.0.0.1:<port>/<absolute path>`.
pub fn sshd(env: &TestEnv) -> Server {
    let dir = env.path().join("sshd");
    std::fs::create_dir_all(&dir).expect("sshd dir");
    let keygen = |name: &str| {
        let key = dir.join(name);
        let ok = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&key)
            .stdin(Stdio::null())
            .status()
            .expect("ssh-keygen runs (scripts/test installs openssh-client)");
        assert!(ok.success(), "ssh-keygen {name}");
        key
    };
    let host_key = keygen("host_key");
    let user_key = keygen("user_key");
    std::fs::copy(dir.join("user_key.pub"), dir.join("authorized_keys")).expect("authorized_keys");
    if !Path::new("/run/sshd").exists() {
        // sshd's privilege-separation directory (the package creates it at boot only).
        let _ = std::fs::create_dir_all("/run/sshd");
    }
    let path = format!(
        "{}:{}",
        crate::env::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let server = start(|port| {
        let log = dir.join(format!("sshd-{port}.log"));
        let conf = dir.join(format!("sshd-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile none\n\
                 AuthorizedKeysFile {keys}\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n\
                 AcceptEnv GIT_PROTOCOL\nPrintMotd no\nLogLevel VERBOSE\n\
                 SetEnv PATH={path} GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL={global}\n",
                host = host_key.display(),
                keys = dir.join("authorized_keys").display(),
                global = env.path().join("gitconfig-global").display(),
            ),
        )
        .expect("sshd config");
        let file = std::fs::File::create(&log).expect("sshd log");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("sshd starts (scripts/test installs openssh-server)");
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("id -un")
                .stdout,
        )
        .expect("utf-8 user name");
        (
            child,
            format!("ssh://{}@127.0.0.1:{port}", user.trim()),
            log,
        )
    });
    let host_pub = std::fs::read_to_string(dir.join("host_key.pub")).expect("host key");
    let known = dir.join("known_hosts");
    std::fs::write(&known, format!("[127.0.0.1]:{} {host_pub}", server.port)).expect("known_hosts");
    env.set_env(
        "GIT_SSH_COMMAND",
        &format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes \
             -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes",
            user_key.display(),
            known.display()
        ),
    );
    server
}

/// Number of ssh connections an sshd log shows (one authenticated session each).
pub fn count_ssh_sessions(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("Accepted publickey"))
        .count()
}

/// Basic-auth credentials for [`http`].
pub struct Auth<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

fn exec_path(env: &TestEnv) -> String {
    env.git(env.path(), &["--exec-path"])
}

/// lighttpd + `git-http-backend` serving `root` under `/git/`, pushes enabled, optionally behind basic auth.
/// Every request is logged (method, path, query) by a wrapper around the backend, because lighttpd's own
/// access log is buffered.
pub fn http(env: &TestEnv, root: &Path, auth: Option<Auth<'_>>) -> Server {
    let real_backend = format!("{}/git-http-backend", exec_path(env));
    let backend = env.path().join("git-http-backend-logged");
    let lighttpd = [
        "/usr/sbin/lighttpd",
        "/usr/bin/lighttpd",
        "/usr/local/sbin/lighttpd",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
    .expect("lighttpd is installed (scripts/test installs it)");
    let docroot = env.path().join("www");
    std::fs::create_dir_all(&docroot).expect("docroot");
    let auth_conf = match &auth {
        None => String::new(),
        Some(a) => {
            let users = env.path().join("htpasswd");
            std::fs::write(&users, format!("{}:{}\n", a.user, a.password)).expect("user file");
            format!(
                "server.modules += (\"mod_auth\", \"mod_authn_file\")\n\
                 auth.backend = \"plain\"\n\
                 auth.backend.plain.userfile = \"{}\"\n\
                 auth.require = ( \"/git/\" => ( \"method\" => \"basic\", \"realm\" => \"git\", \"require\" => \"valid-user\" ) )\n",
                users.display()
            )
        }
    };
    start(|port| {
        let log = env.path().join(format!("access-{port}.log"));
        write_script(
            &backend,
            &format!(
                "printf '\"%s %s?%s\"\\n' \"$REQUEST_METHOD\" \"$PATH_INFO\" \"$QUERY_STRING\" >> '{}'\nexec '{real_backend}'",
                log.display()
            ),
        );
        let errlog = env.path().join(format!("lighttpd-{port}.err"));
        let conf = env.path().join(format!("lighttpd-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "server.document-root = \"{docroot}\"\n\
                 server.port = {port}\n\
                 server.bind = \"127.0.0.1\"\n\
                 server.errorlog = \"{errlog}\"\n\
                 server.modules = (\"mod_access\", \"mod_alias\", \"mod_setenv\", \"mod_cgi\", \"mod_accesslog\")\n\
                 accesslog.filename = \"{errlog}.access\"\n\
                 {auth_conf}\
                 alias.url = ( \"/git/\" => \"{backend}/\" )\n\
                 $HTTP[\"url\"] =~ \"^/git/\" {{\n\
                   cgi.assign = ( \"\" => \"\" )\n\
                   setenv.add-environment = ( \"GIT_PROJECT_ROOT\" => \"{root}\", \"GIT_HTTP_EXPORT_ALL\" => \"1\",\n\
                     \"GIT_CONFIG_NOSYSTEM\" => \"1\", \"GIT_CONFIG_COUNT\" => \"1\",\n\
                     \"GIT_CONFIG_KEY_0\" => \"http.receivepack\", \"GIT_CONFIG_VALUE_0\" => \"true\" )\n\
                 }}\n",
                docroot = docroot.display(),
                errlog = errlog.display(),
                backend = backend.display(),
                root = root.display(),
            ),
        )
        .expect("lighttpd config");
        let child = Command::new(lighttpd)
            .args(["-D", "-f"])
            .arg(&conf)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("lighttpd starts");
        (child, format!("http://127.0.0.1:{port}/git"), log)
    })
}

/// Count lines of an access log for `method` requests whose path contains `needle`.
pub fn count_requests(log: &str, method: &str, needle: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(&format!("\"{method} ")) && l.contains(needle))
        .count()
}

/// Make every command of `env` use a fake ssh that runs the remote command locally and logs it.
/// Returns the log path; URLs look like `ssh://fakehost/<absolute path>`.
pub fn fake_ssh(env: &TestEnv) -> PathBuf {
    let log = env.path().join("fake-ssh.log");
    let script = env.path().join("fake-ssh");
    write_script(
        &script,
        &format!(
            "# fake ssh for tests: skip options, take the host, run the remote command locally\n\
             while [ $# -gt 0 ]; do\n\
               case \"$1\" in\n\
                 -o|-p|-i|-l|-F) shift 2 ;;\n\
                 -*) shift ;;\n\
                 *) break ;;\n\
               esac\n\
             done\n\
             host=$1; shift\n\
             printf '%s %s\\n' \"$host\" \"$*\" >> '{log}'\n\
             exec sh -c \"$*\"\n",
            log = log.display()
        ),
    );
    env.set_env("GIT_SSH_COMMAND", &script.display().to_string());
    env.set_env("GIT_SSH_VARIANT", "ssh");
    log
}

/// Store `user:password` for `server` in a `credential.helper=store` file of `env`'s global config.
pub fn store_credentials(env: &TestEnv, server: &Server, auth: &Auth<'_>) {
    let file = env.path().join("git-credentials");
    std::fs::write(
        &file,
        format!(
            "http://{}:{}@127.0.0.1:{}\n",
            auth.user, auth.password, server.port
        ),
    )
    .expect("credentials file");
    env.git(
        env.path(),
        &[
            "config",
            "--global",
            "credential.helper",
            &format!("store --file={}", file.display()),
        ],
    );
}

/// Write an executable `/bin/sh` script.
pub fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod script");
    }
}
