//! The push transport of own mode and of `git entire push`: ONE `git push --porcelain --no-verify` child.
//!
//! Invariants: the child's stdout (porcelain) is parsed, never shown; its stderr is forwarded as it arrives,
//! minus git's closing "failed to push some refs" line and push hints (the outer git prints its own, for the
//! user's refs only). Options map one to one onto `git push` flags; `--no-verify` because the outer `git push`
//! already ran `pre-push`.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Stdio;

use crate::git::cmd as gitcmd;

use super::status::{parse_porcelain_line, RefStatus};
use super::{PushOptions, PushTransport, TransportFailure};

/// Pushes through a `git push` child to `url`.
#[derive(Debug, Clone)]
pub struct GitPush {
    pub url: String,
}

impl GitPush {
    pub fn new(url: &str) -> Self {
        GitPush {
            url: url.to_string(),
        }
    }

    fn command(&self, specs: &[String], o: &PushOptions) -> std::process::Command {
        let mut cmd = gitcmd::git();
        cmd.args([
            "-c",
            "advice.pushUpdateRejected=false",
            "-c",
            "advice.pushNonFFCurrent=false",
        ])
        .args([
            "push",
            "--porcelain",
            "--no-verify",
            "--recurse-submodules=no",
        ]);
        // Never `-q`: it also silences the porcelain status lines this parses.
        cmd.arg(if o.progress {
            "--progress"
        } else {
            "--no-progress"
        });
        if o.verbosity > 1 {
            cmd.arg("-v");
        }
        cmd.args(o.shared_flags());
        cmd.arg(&self.url).args(specs);
        cmd
    }
}

fn dropped_stderr_line(line: &str) -> bool {
    line.starts_with("error: failed to push some refs to") || line.starts_with("hint: ")
}

impl PushTransport for GitPush {
    fn url(&self) -> Option<&str> {
        Some(&self.url)
    }

    fn push(
        &mut self,
        specs: &[String],
        options: &PushOptions,
    ) -> Result<BTreeMap<String, RefStatus>, TransportFailure> {
        let mut cmd = self.command(specs, options);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        tracing::debug!(target: "entire::push", "running git {}", gitcmd::describe(&cmd));
        let mut child = gitcmd::spawn(&mut cmd).map_err(|e| TransportFailure {
            message: e.to_string(),
        })?;
        let stderr = child.stderr.take();
        let forward = std::thread::spawn(move || match stderr {
            Some(s) => gitcmd::forward_stderr(s, dropped_stderr_line),
            None => Vec::new(),
        });
        let mut stdout = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        let status = child.wait().map_err(|e| TransportFailure {
            message: format!("git push: {e}"),
        })?;
        let stderr = forward.join().unwrap_or_default();
        let mut statuses = BTreeMap::new();
        for line in stdout.lines() {
            if let Some(p) = parse_porcelain_line(line) {
                statuses.insert(p.dst, p.status);
            }
        }
        if statuses.is_empty() && !status.success() {
            return Err(TransportFailure {
                message: last_error_line(&String::from_utf8_lossy(&stderr)),
            });
        }
        Ok(statuses)
    }
}

/// The most telling line of a failed git's stderr, without `fatal: `/`error: `.
pub fn last_error_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
        .collect();
    let pick = lines
        .iter()
        .find(|l| l.starts_with("fatal:"))
        .or_else(|| lines.last())
        .copied()
        .unwrap_or("git push failed");
    pick.trim_start_matches("fatal: ")
        .trim_start_matches("error: ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_line_table() {
        let cases = [
            (
                "fatal: '/nope' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\n",
                "'/nope' does not appear to be a git repository",
            ),
            ("error: something broke\n", "something broke"),
            ("", "git push failed"),
        ];
        for (stderr, want) in cases {
            assert_eq!(last_error_line(stderr), want);
        }
    }
}
