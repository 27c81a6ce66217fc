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

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use crate::git::config;
use crate::git::repo::Repo;

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

/// Variables git removes from the environment of the transport it starts (`local_repo_env`).
const LOCAL_REPO_ENV: [&str; 16] = [
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_IMPLICIT_WORK_TREE",
    "GIT_GRAFT_FILE",
    "GIT_INDEX_FILE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_REPLACE_REF_BASE",
    "GIT_PREFIX",
    "GIT_SHALLOW_FILE",
    "GIT_COMMON_DIR",
    "GIT_QUARANTINE_PATH",
];

fn setting(repo: Option<&Repo>, key: &str) -> Option<String> {
    match repo {
        Some(r) => config::get(r, key),
        None => std::env::var("GIT_CONFIG_PARAMETERS")
            .ok()
            .and_then(|p| config::from_parameters(&p, key)),
    }
}

/// git's `sq_quote`: `'…'`, with `'` and `!` escaped.
pub fn sq_quote(s: &str) -> String {
    let mut out = String::from("'");
    for c in s.chars() {
        match c {
            '\'' | '!' => {
                out.push_str("'\\");
                out.push(c);
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The ssh variants git knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Auto,
    Ssh,
    Plink,
    Putty,
    TortoisePlink,
    Simple,
}

impl Variant {
    /// `ssh.variant` / `GIT_SSH_VARIANT` values.
    pub fn parse(v: &str) -> Option<Variant> {
        Some(match v {
            "auto" => Variant::Auto,
            "ssh" => Variant::Ssh,
            "plink" => Variant::Plink,
            "putty" => Variant::Putty,
            "tortoiseplink" => Variant::TortoisePlink,
            "simple" => Variant::Simple,
            _ => return None,
        })
    }

    /// git's guess from the program name (the first word of a shell command).
    pub fn from_program(program: &str, is_shell_command: bool) -> Variant {
        let first = if is_shell_command {
            program.split_whitespace().next().unwrap_or("")
        } else {
            program
        };
        let base = first.rsplit(['/', '\\']).next().unwrap_or(first);
        let base = base.trim_matches(['\'', '"']).to_ascii_lowercase();
        match base.as_str() {
            "ssh" | "ssh.exe" => Variant::Ssh,
            "plink" | "plink.exe" => Variant::Plink,
            "tortoiseplink" | "tortoiseplink.exe" => Variant::TortoisePlink,
            _ => Variant::Auto,
        }
    }
}

/// The ssh options git adds for `variant` (before the host).
pub fn ssh_options(variant: Variant, port: Option<u16>, version: u8) -> Option<Vec<String>> {
    let mut out = Vec::new();
    if variant == Variant::Ssh && version > 0 {
        out.extend(["-o".to_string(), "SendEnv=GIT_PROTOCOL".to_string()]);
    }
    if variant == Variant::TortoisePlink {
        out.push("-batch".into());
    }
    if let Some(port) = port {
        match variant {
            Variant::Ssh => out.push("-p".into()),
            Variant::Plink | Variant::Putty | Variant::TortoisePlink => out.push("-P".into()),
            Variant::Simple | Variant::Auto => return None,
        }
        out.push(port.to_string());
    }
    Some(out)
}

/// A command like git's `prepare_shell_cmd`: through `sh -c '<cmd> "$@"'` when it needs a shell.
fn program_command(program: &str, shell: bool) -> Command {
    let meta = |c: char| "|&;<>()$`\\\"' \t\n*?[#~=%".contains(c);
    if shell && program.chars().any(meta) {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!("{program} \"$@\"")).arg(program);
        c
    } else {
        Command::new(program)
    }
}

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
    let io = |source| ConnectError::Io {
        url: url.to_string(),
        source,
    };
    if scheme == "git" {
        if std::env::var_os("GIT_PROXY_COMMAND").is_some()
            || setting(repo, "core.gitProxy").is_some()
        {
            return Ok(Dialed::Unsupported("a git proxy is configured"));
        }
        let port = parsed.port.unwrap_or(9418);
        let stream = TcpStream::connect((host.as_str(), port)).map_err(io)?;
        let _ = stream.set_nodelay(true);
        let mut request = format!("{service} {path}\0host={host}");
        if let Some(p) = parsed.port {
            request.push_str(&format!(":{p}"));
        }
        request.push('\0');
        if version > 0 {
            request.push_str(&format!("\0version={version}\0"));
        }
        let mut w = stream.try_clone().map_err(io)?;
        w.write_all(&pkt(request.as_bytes())).map_err(io)?;
        return Ok(Dialed::Connected {
            reader: Box::new(stream),
            writer: Box::new(TcpWriter(w)),
            child: None,
        });
    }
    let Some(mut cmd) = ssh_command(repo, &parsed, &host, version) else {
        return Ok(Dialed::Unsupported("ssh variant cannot take these options"));
    };
    cmd.arg(format!("{service} {}", sq_quote(&path)));
    for var in LOCAL_REPO_ENV {
        cmd.env_remove(var);
    }
    if version > 0 {
        cmd.env("GIT_PROTOCOL", format!("version={version}"));
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    tracing::debug!(target: "entire::push", "connecting: {cmd:?}");
    let mut child = cmd.spawn().map_err(io)?;
    let (Some(w), Some(r)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(io(std::io::Error::other("ssh started without pipes")));
    };
    Ok(Dialed::Connected {
        reader: Box::new(r),
        writer: Box::new(w),
        child: Some(child),
    })
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

    fn read_advertisement(&mut self) -> Result<(), ConnectError> {
        let url = self.url.clone();
        let hung_up = || ConnectError::Remote {
            url: url.clone(),
            message: "the remote end hung up before it listed its refs".into(),
        };
        loop {
            let mut head = [0u8; 4];
            if self.reader.read_exact(&mut head).is_err() {
                return Err(hung_up());
            }
            self.advertisement.extend_from_slice(&head);
            let len = std::str::from_utf8(&head)
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok())
                .ok_or_else(|| ConnectError::Remote {
                    url: url.clone(),
                    message: format!(
                        "protocol error: bad line length {:?}",
                        String::from_utf8_lossy(&head)
                    ),
                })?;
            if len == 0 {
                return Ok(());
            }
            if len < 4 {
                continue;
            }
            let mut payload = vec![0u8; len - 4];
            if self.reader.read_exact(&mut payload).is_err() {
                return Err(hung_up());
            }
            self.advertisement.extend_from_slice(&payload);
            self.parse_line(&payload)?;
            self.lines.push(payload);
        }
    }

    fn parse_line(&mut self, payload: &[u8]) -> Result<(), ConnectError> {
        let (body, caps) = match payload.iter().position(|&b| b == 0) {
            Some(nul) => (&payload[..nul], Some(&payload[nul + 1..])),
            None => (payload, None),
        };
        if let Some(caps) = caps {
            self.capabilities = String::from_utf8_lossy(caps).trim_end().to_string();
        }
        let body = body.strip_suffix(b"\n").unwrap_or(body);
        if let Some(msg) = body.strip_prefix(b"ERR ") {
            return Err(ConnectError::Remote {
                url: self.url.clone(),
                message: format!("remote error: {}", String::from_utf8_lossy(msg)),
            });
        }
        let Some(space) = body.iter().position(|&b| b == b' ') else {
            return Ok(());
        };
        let (oid, name) = (&body[..space], &body[space + 1..]);
        let is_ref = name.starts_with(b"refs/") || name == b"HEAD";
        if is_ref && oid.iter().all(u8::is_ascii_hexdigit) {
            if let (Ok(oid), Ok(name)) = (std::str::from_utf8(oid), std::str::from_utf8(name)) {
                self.refs.push(Advertised {
                    name: name.to_string(),
                    oid: oid.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The advertisement without the refs for which `drop` is true, the capabilities moved to the first line
    /// that remains (as receive-pack itself announces an empty repository when none does).
    pub fn advertisement_without(&self, drop: &dyn Fn(&str) -> bool) -> Vec<u8> {
        let mut caps: Option<&[u8]> = None;
        let mut kept: Vec<Vec<u8>> = Vec::with_capacity(self.lines.len());
        for line in &self.lines {
            let (body, c) = match line.iter().position(|&b| b == 0) {
                Some(nul) => (&line[..nul], Some(&line[nul + 1..])),
                None => (line.as_slice(), None),
            };
            if c.is_some() {
                caps = c;
            }
            let trimmed = body.strip_suffix(b"\n").unwrap_or(body);
            let name = trimmed
                .iter()
                .position(|&b| b == b' ')
                .map(|sp| &trimmed[sp + 1..])
                .and_then(|n| std::str::from_utf8(n).ok());
            if name.is_some_and(drop) {
                continue;
            }
            let mut l = trimmed.to_vec();
            l.push(b'\n');
            kept.push(l);
        }
        let first_ref = usize::from(kept.first().is_some_and(|l| l.starts_with(b"version ")));
        if let Some(caps) = caps {
            let caps_line = |body: &[u8]| {
                let mut l = body.strip_suffix(b"\n").unwrap_or(body).to_vec();
                l.push(0);
                l.extend_from_slice(caps);
                if l.last() != Some(&b'\n') {
                    l.push(b'\n');
                }
                l
            };
            if kept.len() > first_ref {
                kept[first_ref] = caps_line(&kept[first_ref]);
            } else {
                let zero = "0".repeat(if self.object_format() == "sha256" {
                    64
                } else {
                    40
                });
                kept.push(caps_line(format!("{zero} capabilities^{{}}").as_bytes()));
            }
        }
        let mut out: Vec<u8> = kept.iter().flat_map(|l| pkt(l)).collect();
        out.extend_from_slice(b"0000");
        out
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

/// Build the ssh command for `url` as git would (program, variant, options, host); `None` when git would
/// refuse the combination.
fn ssh_command(repo: Option<&Repo>, url: &gix::Url, host: &str, version: u8) -> Option<Command> {
    let (program, shell) = if let Some(c) = std::env::var("GIT_SSH_COMMAND")
        .ok()
        .filter(|c| !c.is_empty())
    {
        (c, true)
    } else if let Some(c) = setting(repo, "core.sshCommand") {
        (c, true)
    } else if let Some(c) = std::env::var("GIT_SSH").ok().filter(|c| !c.is_empty()) {
        (c, false)
    } else {
        ("ssh".to_string(), false)
    };
    let configured = std::env::var("GIT_SSH_VARIANT")
        .ok()
        .or_else(|| setting(repo, "ssh.variant"))
        .and_then(|v| Variant::parse(&v));
    let mut variant = match configured {
        Some(v) if v != Variant::Auto => v,
        _ => Variant::from_program(&program, shell),
    };
    let target = match url.user() {
        Some(u) if u.starts_with('-') => return None,
        Some(u) => format!("{u}@{host}"),
        None => host.to_string(),
    };
    if variant == Variant::Auto {
        // git's probe: an OpenSSH that understands `-G` is `ssh`, anything else is `simple`.
        let mut probe = program_command(&program, shell);
        probe.arg("-G");
        probe.args(ssh_options(Variant::Ssh, url.port, version)?);
        probe.arg(&target);
        probe
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        variant = match probe.status() {
            Ok(s) if s.success() => Variant::Ssh,
            _ => Variant::Simple,
        };
    }
    let mut cmd = program_command(&program, shell);
    cmd.args(ssh_options(variant, url.port, version)?);
    cmd.arg(target);
    Some(cmd)
}

/// One pkt-line.
pub fn pkt(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Read one pkt-line: `Ok(None)` at a flush (or other special packet), `Err` at EOF or bad framing.
pub fn read_pkt(r: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head)?;
    let len = std::str::from_utf8(&head)
        .ok()
        .and_then(|h| usize::from_str_radix(h, 16).ok())
        .ok_or_else(|| std::io::Error::other("bad pkt-line length"))?;
    if len < 4 {
        return Ok(None);
    }
    let mut payload = vec![0u8; len - 4];
    r.read_exact(&mut payload)?;
    Ok(Some(payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sq_quote_table() {
        let cases = [
            ("/srv/r.git", "'/srv/r.git'"),
            ("it's", "'it'\\''s'"),
            ("a!b", "'a'\\!'b'"),
            ("~user/r", "'~user/r'"),
        ];
        for (raw, want) in cases {
            assert_eq!(sq_quote(raw), want);
        }
    }

    #[test]
    fn variant_table() {
        let cases = [
            ("ssh", false, Variant::Ssh),
            ("/usr/bin/ssh", false, Variant::Ssh),
            ("ssh -i key -o X=y", true, Variant::Ssh),
            ("C:\\bin\\plink.exe", false, Variant::Plink),
            ("tortoiseplink", false, Variant::TortoisePlink),
            ("my-ssh-wrapper", false, Variant::Auto),
            ("/tmp/fake-ssh", true, Variant::Auto),
        ];
        for (program, shell, want) in cases {
            assert_eq!(Variant::from_program(program, shell), want, "{program}");
        }
        assert_eq!(Variant::parse("putty"), Some(Variant::Putty));
        assert_eq!(Variant::parse("bogus"), None);
    }

    #[test]
    fn ssh_options_table() {
        let s = |v: &[&str]| Some(v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(ssh_options(Variant::Ssh, None, 0), s(&[]));
        assert_eq!(ssh_options(Variant::Ssh, Some(2222), 0), s(&["-p", "2222"]));
        assert_eq!(
            ssh_options(Variant::Ssh, Some(22), 1),
            s(&["-o", "SendEnv=GIT_PROTOCOL", "-p", "22"])
        );
        assert_eq!(ssh_options(Variant::Plink, Some(22), 1), s(&["-P", "22"]));
        assert_eq!(
            ssh_options(Variant::TortoisePlink, Some(22), 0),
            s(&["-batch", "-P", "22"])
        );
        assert_eq!(ssh_options(Variant::Simple, None, 1), s(&[]));
        assert_eq!(ssh_options(Variant::Simple, Some(22), 0), None);
    }

    #[test]
    fn advertisement_lines() {
        let mut c = Connection {
            url: "u".into(),
            advertisement: Vec::new(),
            lines: Vec::new(),
            refs: Vec::new(),
            capabilities: String::new(),
            reader: BufReader::new(Box::new(std::io::empty())),
            writer: None,
            child: None,
        };
        let a = "0123456789abcdef0123456789abcdef01234567";
        c.parse_line(format!("{a} refs/heads/main\0report-status object-format=sha1\n").as_bytes())
            .expect("ref line");
        c.parse_line(format!("{a} .have\n").as_bytes())
            .expect("have");
        c.parse_line(format!("{} capabilities^{{}}\n", "0".repeat(40)).as_bytes())
            .expect("caps");
        assert_eq!(
            c.refs,
            vec![Advertised {
                name: "refs/heads/main".into(),
                oid: a.into()
            }]
        );
        assert_eq!(c.object_format(), "sha1");
        let err = c.parse_line(b"ERR access denied").expect_err("ERR");
        assert!(err.to_string().contains("access denied"), "{err}");
    }

    #[test]
    fn advertisement_without_table() {
        let a = "0123456789abcdef0123456789abcdef01234567";
        let zero = "0".repeat(40);
        let caps = "report-status delete-refs\n";
        let cp = "refs/entire/checkpoints/c4/a3b2c4d5e6c4";
        let cases: Vec<(Vec<String>, Vec<String>)> = vec![
            (
                vec![
                    format!("{a} {cp}\0{caps}"),
                    format!("{a} refs/heads/main\n"),
                ],
                vec![format!("{a} refs/heads/main\0{caps}")],
            ),
            (
                vec![format!("{a} {cp}\0{caps}")],
                vec![format!("{zero} capabilities^{{}}\0{caps}")],
            ),
            (
                vec![
                    format!("{a} refs/heads/main\0{caps}"),
                    format!("{a} .have\n"),
                ],
                vec![
                    format!("{a} refs/heads/main\0{caps}"),
                    format!("{a} .have\n"),
                ],
            ),
            (
                vec!["version 1\n".into(), format!("{a} {cp}\0{caps}")],
                vec![
                    "version 1\n".into(),
                    format!("{zero} capabilities^{{}}\0{caps}"),
                ],
            ),
        ];
        for (input, want) in cases {
            let c = Connection {
                url: "u".into(),
                advertisement: Vec::new(),
                lines: input.iter().map(|l| l.as_bytes().to_vec()).collect(),
                refs: Vec::new(),
                capabilities: String::new(),
                reader: BufReader::new(Box::new(std::io::empty())),
                writer: None,
                child: None,
            };
            let got = c.advertisement_without(&|n| n.starts_with("refs/entire/"));
            let mut expect: Vec<u8> = want.iter().flat_map(|l| pkt(l.as_bytes())).collect();
            expect.extend_from_slice(b"0000");
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expect),
                "{input:?}"
            );
        }
    }

    #[test]
    fn err_line_is_an_error() {
        let mut c = Connection {
            url: "u".into(),
            advertisement: Vec::new(),
            lines: Vec::new(),
            refs: Vec::new(),
            capabilities: String::new(),
            reader: BufReader::new(Box::new(std::io::empty())),
            writer: None,
            child: None,
        };
        let err = c.parse_line(b"ERR access denied").expect_err("ERR");
        assert!(err.to_string().contains("access denied"), "{err}");
    }
}
