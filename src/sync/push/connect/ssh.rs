//! The ssh command git would run for a URL (`connect.c`): program, variant, options, host and the quoted
//! remote command.
//!
//! Invariants: the program comes from `GIT_SSH_COMMAND`, then `core.sshCommand` (both through `sh -c` when
//! they need a shell), then `GIT_SSH`, then `ssh`; the variant from `GIT_SSH_VARIANT` / `ssh.variant`, else
//! from the program's name, else git's `ssh -G` probe (the only child process started here).
//!
//! Failure modes: none reported; a combination git would refuse (a port with the `simple` variant, a user that
//! looks like an option) yields `None`, and the caller leaves the case to git.

use std::process::{Command, Stdio};

use crate::git::repo::Repo;

use super::setting;

/// Variables git removes from the environment of the transport it starts (`local_repo_env`).
pub(super) const LOCAL_REPO_ENV: [&str; 16] = [
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

/// Build the ssh command for `url` as git would (program, variant, options, host); `None` when git would
/// refuse the combination.
pub(super) fn ssh_command(
    repo: Option<&Repo>,
    url: &gix::Url,
    host: &str,
    version: u8,
) -> Option<Command> {
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
}
