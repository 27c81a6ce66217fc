//! The remote-helper protocol, as git really speaks it (remote-helper-protocol.md §1): command parsing, option
//! state, and line I/O.
//!
//! Invariants:
//! - [`parse_command`] is pure and total: every line maps to a [`Command`], unknown ones to
//!   [`Command::Unknown`].
//! - Option values are unquoted exactly once (git C-quotes a value only when it needs quoting).
//! - [`Io`] flushes after every reply; nothing else in the helper writes to stdout.

use std::io::{BufRead, BufReader, Stdin, Stdout, Write};

use entire::sync::push::status::unquote;
use entire::sync::push::PushOptions;

/// One line from git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Capabilities,
    /// `option <name> <value>`, value unquoted.
    Option {
        name: String,
        value: String,
    },
    List {
        for_push: bool,
    },
    Fetch {
        oid: String,
        name: String,
    },
    Push {
        spec: String,
    },
    StatelessConnect {
        service: String,
    },
    Connect {
        service: String,
    },
    /// Any other command line; relayed as is in relay mode, refused in own mode.
    Unknown(String),
    /// The blank line ending a batch or the session.
    End,
}

/// Parse one line (without its newline).
pub fn parse_command(line: &str) -> Command {
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Command::End;
    }
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match (word, rest) {
        ("capabilities", "") => Command::Capabilities,
        ("list", "") => Command::List { for_push: false },
        ("list", "for-push") => Command::List { for_push: true },
        ("option", r) if !r.is_empty() => {
            let (name, value) = r.split_once(' ').unwrap_or((r, ""));
            Command::Option {
                name: name.to_string(),
                value: unquote(value),
            }
        }
        ("fetch", r) => match r.split_once(' ') {
            Some((oid, name)) if !oid.is_empty() && !name.is_empty() => Command::Fetch {
                oid: oid.to_string(),
                name: name.to_string(),
            },
            _ => Command::Unknown(line.to_string()),
        },
        ("push", r) if !r.is_empty() => Command::Push {
            spec: r.to_string(),
        },
        ("stateless-connect", r) if !r.is_empty() => Command::StatelessConnect {
            service: r.to_string(),
        },
        ("connect", r) if !r.is_empty() => Command::Connect {
            service: r.to_string(),
        },
        _ => Command::Unknown(line.to_string()),
    }
}

/// The reply to an `option` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok,
    Unsupported,
    Error(String),
}

impl Reply {
    pub fn line(&self) -> String {
        match self {
            Reply::Ok => "ok".into(),
            Reply::Unsupported => "unsupported".into(),
            Reply::Error(m) => format!("error {m}"),
        }
    }
}

/// Everything git told us through `option` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub progress: bool,
    /// 0 quiet, 1 normal, 2+ verbose.
    pub verbosity: u32,
    pub object_format: bool,
    pub depth: Option<String>,
    pub deepen_since: Option<String>,
    pub deepen_not: Vec<String>,
    pub deepen_relative: bool,
    pub filter: Option<String>,
    pub refetch: bool,
    pub update_shallow: bool,
    pub family: Option<String>,
    pub push: PushOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            progress: false,
            verbosity: 1,
            object_format: false,
            depth: None,
            deepen_since: None,
            deepen_not: Vec::new(),
            deepen_relative: false,
            filter: None,
            refetch: false,
            update_shallow: false,
            family: None,
            push: PushOptions::default(),
        }
    }
}

fn boolean(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

impl Options {
    /// Record one option; the reply tells git whether we understood it.
    pub fn apply(&mut self, name: &str, value: &str) -> Reply {
        let flag = |target: &mut bool| match boolean(value) {
            Some(b) => {
                *target = b;
                Reply::Ok
            }
            None => Reply::Error(format!("{name} expects true or false")),
        };
        match name {
            "progress" => flag(&mut self.progress),
            "verbosity" => match value.parse() {
                Ok(v) => {
                    self.verbosity = v;
                    Reply::Ok
                }
                Err(_) => Reply::Error("verbosity expects a number".into()),
            },
            "object-format" => flag(&mut self.object_format),
            "followtags" | "cloning" | "check-connectivity" => Reply::Ok,
            "depth" => {
                self.depth = Some(value.to_string());
                Reply::Ok
            }
            "deepen-since" => {
                self.deepen_since = Some(value.to_string());
                Reply::Ok
            }
            "deepen-not" => {
                self.deepen_not.push(value.to_string());
                Reply::Ok
            }
            "deepen-relative" => flag(&mut self.deepen_relative),
            "filter" => {
                self.filter = Some(value.to_string());
                Reply::Ok
            }
            "refetch" => flag(&mut self.refetch),
            "update-shallow" => flag(&mut self.update_shallow),
            "family" => {
                self.family = Some(value.to_string());
                Reply::Ok
            }
            "dry-run" => flag(&mut self.push.dry_run),
            "atomic" => flag(&mut self.push.atomic),
            "force-if-includes" => flag(&mut self.push.force_if_includes),
            "push-option" => {
                self.push.push_options.push(value.to_string());
                Reply::Ok
            }
            "cas" => {
                self.push.cas.push(value.to_string());
                Reply::Ok
            }
            "pushcert" => match value {
                "true" | "if-asked" => {
                    self.push.signed = Some(value.to_string());
                    Reply::Ok
                }
                "false" => {
                    self.push.signed = None;
                    Reply::Ok
                }
                _ => Reply::Error("pushcert expects true, false or if-asked".into()),
            },
            _ => Reply::Unsupported,
        }
    }

    /// Push options with this session's progress and verbosity.
    pub fn push_options(&self) -> PushOptions {
        PushOptions {
            progress: self.progress,
            verbosity: self.verbosity,
            ..self.push.clone()
        }
    }

    /// `git fetch` flags for the fetch options git gave us.
    pub fn fetch_flags(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.progress {
            out.push("--progress".to_string());
        }
        match self.verbosity {
            0 => out.push("-q".into()),
            1 => {}
            _ => out.push("-v".into()),
        }
        match (&self.depth, self.deepen_relative) {
            (Some(d), true) => out.push(format!("--deepen={d}")),
            (Some(d), false) => out.push(format!("--depth={d}")),
            (None, _) => {}
        }
        if let Some(s) = &self.deepen_since {
            out.push(format!("--shallow-since={s}"));
        }
        for n in &self.deepen_not {
            out.push(format!("--shallow-exclude={n}"));
        }
        if let Some(f) = &self.filter {
            out.push(format!("--filter={f}"));
        }
        if self.refetch {
            out.push("--refetch".into());
        }
        if self.update_shallow {
            out.push("--update-shallow".into());
        }
        match self.family.as_deref() {
            Some("ipv4") => out.push("-4".into()),
            Some("ipv6") => out.push("-6".into()),
            _ => {}
        }
        out
    }
}

/// Line I/O with git: stdin buffered, stdout flushed after every reply.
pub struct Io {
    pub input: BufReader<Stdin>,
    pub output: Stdout,
}

impl Io {
    pub fn new() -> Self {
        Io {
            input: BufReader::new(std::io::stdin()),
            output: std::io::stdout(),
        }
    }

    /// The next line without its newline; `None` at end of input.
    pub fn read_line(&mut self) -> std::io::Result<Option<String>> {
        let mut buf = Vec::new();
        if self.input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        tracing::trace!(target: "entire::helper::protocol", "<- {}", String::from_utf8_lossy(&buf));
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// Write `lines`, each followed by a newline, and flush.
    pub fn reply<S: AsRef<str>>(&mut self, lines: &[S]) -> std::io::Result<()> {
        let mut out = self.output.lock();
        for l in lines {
            tracing::trace!(target: "entire::helper::protocol", "-> {}", l.as_ref());
            out.write_all(l.as_ref().as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let opt = |n: &str, v: &str| Command::Option {
            name: n.into(),
            value: v.into(),
        };
        let cases = [
            ("capabilities", Command::Capabilities),
            ("list", Command::List { for_push: false }),
            ("list for-push", Command::List { for_push: true }),
            ("option verbosity 1", opt("verbosity", "1")),
            ("option push-option \"a\\nb\"", opt("push-option", "a\nb")),
            (
                "option push-option with space",
                opt("push-option", "with space"),
            ),
            (
                "option cas refs/heads/main:0123",
                opt("cas", "refs/heads/main:0123"),
            ),
            (
                "fetch 0123456789abcdef0123456789abcdef01234567 refs/heads/main",
                Command::Fetch {
                    oid: "0123456789abcdef0123456789abcdef01234567".into(),
                    name: "refs/heads/main".into(),
                },
            ),
            (
                "push +refs/heads/a:refs/heads/b",
                Command::Push {
                    spec: "+refs/heads/a:refs/heads/b".into(),
                },
            ),
            (
                "stateless-connect git-upload-pack",
                Command::StatelessConnect {
                    service: "git-upload-pack".into(),
                },
            ),
            (
                "connect git-receive-pack",
                Command::Connect {
                    service: "git-receive-pack".into(),
                },
            ),
            ("", Command::End),
            ("\r", Command::End),
            ("fetch onlyoid", Command::Unknown("fetch onlyoid".into())),
            (
                "list everything",
                Command::Unknown("list everything".into()),
            ),
            (
                "get https://x /tmp/y",
                Command::Unknown("get https://x /tmp/y".into()),
            ),
            ("option", Command::Unknown("option".into())),
            ("push", Command::Unknown("push".into())),
        ];
        for (line, want) in cases {
            assert_eq!(parse_command(line), want, "{line:?}");
        }
    }

    #[test]
    fn option_table() {
        let cases = [
            ("progress", "true", Reply::Ok),
            (
                "progress",
                "yes",
                Reply::Error("progress expects true or false".into()),
            ),
            ("verbosity", "2", Reply::Ok),
            (
                "verbosity",
                "x",
                Reply::Error("verbosity expects a number".into()),
            ),
            ("dry-run", "true", Reply::Ok),
            ("atomic", "true", Reply::Ok),
            ("push-option", "ci.skip", Reply::Ok),
            ("cas", "refs/heads/main:abc", Reply::Ok),
            ("pushcert", "if-asked", Reply::Ok),
            ("depth", "1", Reply::Ok),
            ("filter", "blob:none", Reply::Ok),
            ("servpath", "/x", Reply::Unsupported),
            ("force", "true", Reply::Unsupported),
        ];
        let mut o = Options::default();
        for (name, value, want) in cases {
            assert_eq!(o.apply(name, value), want, "{name} {value}");
        }
        assert!(o.progress && o.push.dry_run && o.push.atomic);
        assert_eq!(o.verbosity, 2);
        assert_eq!(o.push.push_options, ["ci.skip"]);
        assert_eq!(o.push.cas, ["refs/heads/main:abc"]);
        assert_eq!(o.push.signed.as_deref(), Some("if-asked"));
        assert_eq!(
            o.fetch_flags(),
            ["--progress", "-v", "--depth=1", "--filter=blob:none"]
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_lines_never_panic(line in "(?s).{0,80}", name in "[a-z-]{0,12}", value in ".{0,20}") {
            let _ = parse_command(&line);
            let mut opts = Options::default();
            let _ = opts.apply(&name, &value).line();
            let _ = opts.fetch_flags();
            let _ = opts.push_options();
        }

        #[test]
        fn commands_round_trip(oid in "[0-9a-f]{40}", name in "refs/[a-z/]{1,20}", opt in "[a-z-]{1,12}", value in "[a-z0-9]{0,8}") {
            proptest::prop_assert_eq!(
                parse_command(&format!("fetch {oid} {name}")),
                Command::Fetch { oid: oid.clone(), name: name.clone() }
            );
            proptest::prop_assert_eq!(
                parse_command(&format!("option {opt} {value}")),
                Command::Option { name: opt.clone(), value: value.clone() }
            );
            proptest::prop_assert_eq!(
                parse_command(&format!("push +{name}:{name}")),
                Command::Push { spec: format!("+{name}:{name}") }
            );
        }
    }
}
