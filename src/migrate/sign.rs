//! Commit signing the way git does it, driven by the same configuration.
//!
//! Resolution: `--no-sign` disables; `--signing-key KEY` forces signing with KEY; otherwise signing happens iff
//! `commit.gpgSign` is true, with `user.signingKey`. `gpg.format` picks the signer:
//! - `openpgp` (default): `gpg.openpgp.program`, else `gpg.program`, else `gpg`, run as
//!   `<program> --status-fd=2 -bsau <key>` (key defaults to the committer's `Name <email>`), payload on stdin.
//! - `x509`: the same with `gpg.x509.program` (default `gpgsm`).
//! - `ssh`: `gpg.ssh.program` (default `ssh-keygen`) run as `-Y sign -n git -f <key file> <payload file>`; a
//!   literal key (`ssh-…` or `key::…`) is written to a temporary file and used through the agent (`-U`); without a
//!   key, the first line of `gpg.ssh.defaultKeyCommand`'s output is used, as git does.
//!
//! Invariants: the signature is produced over exactly the bytes of the unsigned commit and stored in its
//! `gpgsig` header, so `git verify-commit` checks it. SSH Ed25519 signatures are deterministic, so signed
//! migrations keep stable commit IDs; OpenPGP signatures embed a timestamp and do not.
//!
//! Failure modes: a signer that cannot run or fails is a [`SignError`] carrying its stderr. Unlike upstream's
//! best-effort signing, the migration never silently falls back to unsigned commits: the user asked for
//! signatures (explicitly or through `commit.gpgSign`), and `--no-sign` is the documented way out.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::git::repo::Repo;

/// What the command line asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SignRequest {
    /// Follow git's configuration.
    #[default]
    Config,
    /// Sign with this key regardless of `commit.gpgSign`.
    Key(String),
    /// Never sign.
    Off,
}

/// Signing failed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("cannot run signing program {program:?}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("signing with {program:?} failed: {stderr}")]
    Failed { program: String, stderr: String },
    #[error(
        "gpg.format is ssh but neither user.signingKey nor gpg.ssh.defaultKeyCommand is configured"
    )]
    NoSshKey,
    #[error("unsupported gpg.format {0:?} (expected openpgp, x509 or ssh)")]
    Format(String),
    #[error("cannot write temporary file {path}: {source}")]
    Temp {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A configured signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// GnuPG-style (`openpgp` and `x509`): detached armored signature on stdout.
    Gpg { program: String, key: String },
    /// `ssh-keygen -Y sign`.
    Ssh { program: String, key: String },
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary file removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn write(data: &[u8]) -> Result<Temp, SignError> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("entire-migrate-sign-{}-{n}", std::process::id()));
        std::fs::write(&path, data).map_err(|source| SignError::Temp {
            path: path.clone(),
            source,
        })?;
        Ok(Temp(path))
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let _ = std::fs::remove_file(self.0.with_extension("sig"));
    }
}

fn expand_home(path: &str) -> String {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home)
            .join(rest)
            .to_string_lossy()
            .into_owned(),
        _ => path.to_string(),
    }
}

impl Signer {
    /// The signer to use for `request` in `repo`, or `None` for unsigned commits. `ident` is the committer's
    /// `Name <email>`, gpg's default key.
    pub fn resolve(
        repo: &Repo,
        request: &SignRequest,
        ident: &str,
    ) -> Result<Option<Signer>, SignError> {
        let config = repo.gix().config_snapshot();
        let key = match request {
            SignRequest::Off => return Ok(None),
            SignRequest::Key(k) => Some(k.clone()),
            SignRequest::Config => {
                if !config.boolean("commit.gpgSign").unwrap_or(false) {
                    return Ok(None);
                }
                repo.config_string("user.signingKey")
            }
        };
        let format = repo
            .config_string("gpg.format")
            .unwrap_or_else(|| "openpgp".into());
        let program = |keys: &[&str], default: &str| {
            keys.iter()
                .find_map(|k| repo.config_string(k))
                .unwrap_or_else(|| default.to_string())
        };
        match format.as_str() {
            "openpgp" => Ok(Some(Signer::Gpg {
                program: program(&["gpg.openpgp.program", "gpg.program"], "gpg"),
                key: key.unwrap_or_else(|| ident.to_string()),
            })),
            "x509" => Ok(Some(Signer::Gpg {
                program: program(&["gpg.x509.program"], "gpgsm"),
                key: key.unwrap_or_else(|| ident.to_string()),
            })),
            "ssh" => {
                let key = match key {
                    Some(k) => k,
                    None => default_ssh_key(repo)?,
                };
                Ok(Some(Signer::Ssh {
                    program: program(&["gpg.ssh.program"], "ssh-keygen"),
                    key,
                }))
            }
            other => Err(SignError::Format(other.to_string())),
        }
    }

    /// The armored signature of `payload`.
    pub fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignError> {
        match self {
            Signer::Gpg { program, key } => {
                let out = run(program, &["--status-fd=2", "-bsau", key], Some(payload))?;
                if !String::from_utf8_lossy(&out.stderr).contains("[GNUPG:] SIG_CREATED ") {
                    return Err(SignError::Failed {
                        program: program.clone(),
                        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    });
                }
                Ok(out.stdout)
            }
            Signer::Ssh { program, key } => {
                let literal = key
                    .strip_prefix("key::")
                    .or(key.starts_with("ssh-").then_some(key.as_str()));
                let key_file = match literal {
                    Some(k) => KeyFile::Temp(Temp::write(k.as_bytes())?),
                    None => KeyFile::Path(expand_home(key)),
                };
                let buffer = Temp::write(payload)?;
                let mut args = vec!["-Y", "sign", "-n", "git", "-f", key_file.path()];
                if literal.is_some() {
                    args.push("-U");
                }
                let buffer_path = buffer.0.to_string_lossy().into_owned();
                args.push(&buffer_path);
                run(program, &args, None)?;
                let sig_path = buffer.0.with_extension("sig");
                std::fs::read(&sig_path).map_err(|e| SignError::Failed {
                    program: program.clone(),
                    stderr: format!("no signature written to {}: {e}", sig_path.display()),
                })
            }
        }
    }
}

enum KeyFile {
    Temp(Temp),
    Path(String),
}

impl KeyFile {
    fn path(&self) -> &str {
        match self {
            KeyFile::Temp(t) => t.0.to_str().expect("temp dir paths are UTF-8"),
            KeyFile::Path(p) => p,
        }
    }
}

fn default_ssh_key(repo: &Repo) -> Result<String, SignError> {
    let command = repo
        .config_string("gpg.ssh.defaultKeyCommand")
        .ok_or(SignError::NoSshKey)?;
    let out = run("sh", &["-c", &command], None)?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.starts_with("ssh-") {
                l
            } else {
                format!("key::{l}")
            }
        })
        .ok_or(SignError::NoSshKey)
}

fn run(
    program: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Result<std::process::Output, SignError> {
    let spawn = |source| SignError::Spawn {
        program: program.to_string(),
        source,
    };
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn)?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data).map_err(spawn)?;
    }
    let out = child.wait_with_output().map_err(spawn)?;
    if !out.status.success() {
        return Err(SignError::Failed {
            program: program.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out)
}
