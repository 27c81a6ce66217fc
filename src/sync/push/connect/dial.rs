//! Opening the raw transport to a service of a remote (`git-receive-pack`, `git-upload-pack`) as git's
//! `connect.c` does: a TCP connection and the git:// request line, or an ssh child (see [`super::ssh`]).
//!
//! Invariants: nothing is read from the connection here; the ssh child's stderr is inherited; the repository's
//! environment variables ([`super::ssh::LOCAL_REPO_ENV`]) are removed from it; dropping the git:// write half
//! shuts the socket down for writing.
//!
//! Failure modes: a case left to git is [`Dialed::Unsupported`] with the reason (other schemes, a protocol
//! policy, a proxy, a host or path that looks like an option, an ssh variant that cannot take the options);
//! a connection or spawn failure is [`ConnectError::Io`] naming the URL.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};

use crate::git::repo::Repo;

use super::advert::pkt;
use super::ssh::{sq_quote, ssh_command, LOCAL_REPO_ENV};
use super::{setting, ConnectError, ServerWriter};

/// A raw connection to a service of a remote, before anything was read from it.
pub enum Dialed {
    Connected {
        reader: Box<dyn Read + Send>,
        writer: ServerWriter,
        /// The ssh process (ssh only).
        child: Option<Child>,
    },
    /// Not a case this module handles; the reason is for logs.
    Unsupported(&'static str),
}

/// The write half of a git:// connection: dropping it shuts the socket down for writing, so the server sees
/// the end of the client's requests (a protocol-v2 `upload-pack` serves commands until then).
struct TcpWriter(TcpStream);

impl Write for TcpWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl Drop for TcpWriter {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Write);
    }
}

/// Open `service` (`git-receive-pack`, `git-upload-pack`) of the ssh or git:// `url` as git's `connect.c`
/// does, asking for protocol `version` (0: none), or say why this case is left to git.
pub fn dial(
    repo: Option<&Repo>,
    url: &str,
    service: &str,
    version: u8,
) -> Result<Dialed, ConnectError> {
    let Ok(parsed) = gix::url::parse(gix::bstr::BStr::new(url.as_bytes())) else {
        return Ok(Dialed::Unsupported("not a URL gix parses"));
    };
    let scheme = match parsed.scheme {
        gix::url::Scheme::Ssh => "ssh",
        gix::url::Scheme::Git => "git",
        _ => return Ok(Dialed::Unsupported("not ssh or git://")),
    };
    if std::env::var_os("GIT_ALLOW_PROTOCOL").is_some()
        || setting(repo, "protocol.allow").is_some()
        || setting(repo, &format!("protocol.{scheme}.allow")).is_some()
    {
        return Ok(Dialed::Unsupported("a protocol policy is configured"));
    }
    let Some(host) = parsed.host().map(str::to_string) else {
        return Ok(Dialed::Unsupported("no host"));
    };
    let path = gix::url::expand_path::for_shell(parsed.path.clone()).to_string();
    if host.starts_with('-') || path.starts_with('-') {
        return Ok(Dialed::Unsupported("host or path looks like an option"));
    }
    let target = Target {
        url,
        parsed: &parsed,
        host: &host,
        path: &path,
        service,
        version,
    };
    if scheme == "git" {
        dial_git(repo, &target)
    } else {
        dial_ssh(repo, &target)
    }
}

/// What [`dial`] resolved: the service of one remote repository.
struct Target<'a> {
    url: &'a str,
    parsed: &'a gix::Url,
    host: &'a str,
    path: &'a str,
    service: &'a str,
    version: u8,
}

impl Target<'_> {
    fn io(&self, source: std::io::Error) -> ConnectError {
        ConnectError::Io {
            url: self.url.to_string(),
            source,
        }
    }
}

/// A TCP connection to the git daemon and the `<service> <path>\0host=<host>\0` request.
fn dial_git(repo: Option<&Repo>, t: &Target) -> Result<Dialed, ConnectError> {
    if std::env::var_os("GIT_PROXY_COMMAND").is_some() || setting(repo, "core.gitProxy").is_some() {
        return Ok(Dialed::Unsupported("a git proxy is configured"));
    }
    let (host, port) = (t.host, t.parsed.port);
    let stream = TcpStream::connect((host, port.unwrap_or(9418))).map_err(|e| t.io(e))?;
    let _ = stream.set_nodelay(true);
    let mut request = format!("{} {}\0host={host}", t.service, t.path);
    if let Some(p) = port {
        request.push_str(&format!(":{p}"));
    }
    request.push('\0');
    if t.version > 0 {
        request.push_str(&format!("\0version={}\0", t.version));
    }
    let mut w = stream.try_clone().map_err(|e| t.io(e))?;
    w.write_all(&pkt(request.as_bytes())).map_err(|e| t.io(e))?;
    Ok(Dialed::Connected {
        reader: Box::new(stream),
        writer: Box::new(TcpWriter(w)),
        child: None,
    })
}

/// The ssh child running `<service> '<path>'` on the host.
fn dial_ssh(repo: Option<&Repo>, t: &Target) -> Result<Dialed, ConnectError> {
    let Some(mut cmd) = ssh_command(repo, t.parsed, t.host, t.version) else {
        return Ok(Dialed::Unsupported("ssh variant cannot take these options"));
    };
    cmd.arg(format!("{} {}", t.service, sq_quote(t.path)));
    for var in LOCAL_REPO_ENV {
        cmd.env_remove(var);
    }
    if t.version > 0 {
        cmd.env("GIT_PROTOCOL", format!("version={}", t.version));
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    tracing::debug!(target: "entire::push", "connecting: {cmd:?}");
    let mut child = cmd.spawn().map_err(|e| t.io(e))?;
    let (Some(w), Some(r)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(t.io(std::io::Error::other("ssh started without pipes")));
    };
    Ok(Dialed::Connected {
        reader: Box::new(r),
        writer: Box::new(w),
        child: Some(child),
    })
}
