//! One connection to a remote `git-receive-pack` over ssh or git://, opened the way git opens it, so that the
//! listing git asks for (`list for-push`) and the push itself travel over the SAME connection (see
//! [`super::wire`]).
//!
//! What is reproduced from git's `connect.c` (and nothing more):
//! - ssh program: `GIT_SSH_COMMAND`, then `core.sshCommand` (both through `sh -c` when they need a shell), then
//!   `GIT_SSH`, then `ssh`; variant from `GIT_SSH_VARIANT` / `ssh.variant`, else from the program's name, else
//!   git's `ssh -G` probe; `-p` / `-P <port>`, `-batch` for TortoisePlink, `-o SendEnv=GIT_PROTOCOL` only for
//!   protocol v1 (receive-pack never speaks v2); the remote command `git-receive-pack '<path>'` with git's shell
//!   quoting and `~user` paths; the repository's environment variables removed from the ssh child.
//! - git://: a TCP connection to port 9418 (or the URL's) and the `git-receive-pack <path>\0host=<host>\0`
//!   request.
//!
//! Everything else is left to git: [`Connection::open`] returns [`Opened::Unsupported`] (the caller then pushes
//! through a `git push` child, two connections, exactly as before) for other schemes, a `GIT_PROXY_COMMAND` or
//! `core.gitProxy`, any `protocol.allow` / `protocol.<scheme>.allow` / `GIT_ALLOW_PROTOCOL` policy (git itself
//! enforces it then), the `simple` ssh variant with a port, a host or user that could be mistaken for an
//! option, and `entire.oneConnectionPush=false`.
//!
//! Invariants: the ssh child's stderr is the helper's (ssh's prompts and the server's `fatal:` lines reach the
//! user as with plain git); a connection that is dropped without a push ends the conversation with a flush
//! packet, as `git push` does when it has nothing to send.
//!
//! Failure modes: [`ConnectError`] names the URL; an `ERR` packet from the server is passed on verbatim.
//!
//! Layout: `dial.rs` opens the raw transport (git:// there, ssh through `ssh.rs`), `advert.rs` reads and rewrites
//! the receive-pack advertisement and frames pkt-lines; this file holds the connection itself.

mod advert;
mod dial;
mod ssh;

use std::io::{BufReader, Read, Write};
use std::process::Child;

use crate::git::config;
use crate::git::repo::Repo;

pub use advert::{pkt, read_pkt};
pub use dial::{dial, Dialed};
pub use ssh::{sq_quote, ssh_options, Variant};

/// Errors of opening a connection or reading its advertisement.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {url}")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url}: {message}")]
    Remote { url: String, message: String },
}

/// The server → client direction of a connection.
pub type ServerReader = BufReader<Box<dyn Read + Send>>;
/// The client → server direction of a connection.
pub type ServerWriter = Box<dyn Write + Send>;

/// The result of [`Connection::open`].
pub enum Opened {
    Connected(Box<Connection>),
    /// Not a case this module handles; the reason is for logs.
    Unsupported(&'static str),
}

/// One ref of a receive-pack advertisement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub name: String,
    pub oid: String,
}

/// An open connection positioned right after the ref advertisement.
pub struct Connection {
    pub url: String,
    /// The advertisement exactly as received (pkt-lines up to and including the flush).
    pub advertisement: Vec<u8>,
    /// Its payloads, in order (for [`Connection::advertisement_without`]).
    lines: Vec<Vec<u8>>,
    pub refs: Vec<Advertised>,
    /// The capability list of the first line.
    pub capabilities: String,
    pub(crate) reader: ServerReader,
    pub(crate) writer: Option<ServerWriter>,
    pub(crate) child: Option<Child>,
}

fn setting(repo: Option<&Repo>, key: &str) -> Option<String> {
    match repo {
        Some(r) => config::get(r, key),
        None => std::env::var("GIT_CONFIG_PARAMETERS")
            .ok()
            .and_then(|p| config::from_parameters(&p, key)),
    }
}

impl Connection {
    /// Connect to `url`'s receive-pack and read its advertisement, or say why this case is left to git.
    pub fn open(repo: Option<&Repo>, url: &str) -> Result<Opened, ConnectError> {
        if setting(repo, "entire.oneConnectionPush").is_some_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "false" | "no" | "off" | "0"
            )
        }) {
            return Ok(Opened::Unsupported("entire.oneConnectionPush is off"));
        }
        let version: u8 = match setting(repo, "protocol.version").as_deref() {
            Some("1") => 1,
            _ => 0,
        };
        let (reader, writer, child) = match dial(repo, url, "git-receive-pack", version)? {
            Dialed::Connected {
                reader,
                writer,
                child,
            } => (reader, writer, child),
            Dialed::Unsupported(why) => return Ok(Opened::Unsupported(why)),
        };
        let mut conn = Connection {
            url: url.to_string(),
            advertisement: Vec::new(),
            lines: Vec::new(),
            refs: Vec::new(),
            capabilities: String::new(),
            reader: BufReader::with_capacity(1 << 16, reader),
            writer: Some(writer),
            child,
        };
        conn.read_advertisement()?;
        Ok(Opened::Connected(Box::new(conn)))
    }

    /// The object format the server announced (`sha1` when it announced none).
    pub fn object_format(&self) -> &str {
        self.capabilities
            .split(' ')
            .find_map(|c| c.strip_prefix("object-format="))
            .unwrap_or("sha1")
    }

    /// End the conversation without pushing: a flush packet, then wait for the transport to exit.
    pub fn close(mut self) {
        self.finish(true);
    }

    pub(crate) fn finish(&mut self, send_flush: bool) {
        if let Some(mut w) = self.writer.take() {
            if send_flush {
                let _ = w.write_all(b"0000").and_then(|_| w.flush());
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Hand the two directions over (for the push); the connection keeps the ssh child to wait for.
    pub(crate) fn split(&mut self) -> (ServerReader, Option<ServerWriter>) {
        let reader = std::mem::replace(
            &mut self.reader,
            BufReader::new(Box::new(std::io::empty()) as Box<dyn Read + Send>),
        );
        (reader, self.writer.take())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.finish(true);
    }
}
