//! The relayed `git remote-<scheme>` child: line I/O, and respawning it with the session's options replayed
//! (git's `remote-curl` exits after a push with any rejected ref, so a second push needs a fresh child).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{bail, Context};
use entire::git::cmd::{self as gitcmd, DEPTH_ENV};

/// A running `git remote-<scheme>` and what is needed to start it again.
pub struct Relayed {
    pub process: Child,
    pub to: ChildStdin,
    pub from: BufReader<ChildStdout>,
    program: PathBuf,
    args: Vec<String>,
    /// Every `option` line forwarded so far, replayed into a respawned child.
    options: Vec<String>,
}

fn exec_path() -> PathBuf {
    if let Some(p) = std::env::var_os("GIT_EXEC_PATH") {
        return PathBuf::from(p);
    }
    let mut cmd = gitcmd::git();
    cmd.arg("--exec-path");
    match gitcmd::run_ok(&mut cmd) {
        Ok(out) => PathBuf::from(out.trim()),
        Err(_) => PathBuf::from("/usr/lib/git-core"),
    }
}

fn start(
    program: &PathBuf,
    args: &[String],
) -> anyhow::Result<(Child, ChildStdin, BufReader<ChildStdout>)> {
    let mut process = Command::new(program)
        .args(args)
        .env(DEPTH_ENV, (gitcmd::depth() + 1).to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let (Some(to), Some(from)) = (process.stdin.take(), process.stdout.take()) else {
        bail!("{} started without pipes", program.display());
    };
    Ok((process, to, BufReader::new(from)))
}

impl Relayed {
    /// Start `git remote-<scheme> <name> <url>` from git's exec path.
    pub fn spawn(scheme: &str, name: &str, url: &str) -> anyhow::Result<Self> {
        let program = exec_path().join(format!("git-remote-{scheme}"));
        let args = vec![name.to_string(), url.to_string()];
        let (process, to, from) = start(&program, &args)?;
        Ok(Relayed {
            process,
            to,
            from,
            program,
            args,
            options: Vec::new(),
        })
    }

    /// The URL the child serves.
    pub fn url(&self) -> &str {
        self.args.get(1).map_or("", String::as_str)
    }

    /// Serve `url` instead (a push URL that differs from the fetch URL), options replayed.
    pub fn retarget(&mut self, url: &str) -> anyhow::Result<()> {
        if let Some(a) = self.args.get_mut(1) {
            *a = url.to_string();
        }
        self.respawn()
    }

    /// Replace the child by a fresh one that has seen the same `option` lines.
    pub fn respawn(&mut self) -> anyhow::Result<()> {
        let _ = self.process.kill();
        let _ = self.process.wait();
        let (process, to, from) = start(&self.program, &self.args)?;
        self.process = process;
        self.to = to;
        self.from = from;
        for line in self.options.clone() {
            self.send(&line)?;
            self.recv()?;
        }
        Ok(())
    }

    pub fn send(&mut self, line: &str) -> std::io::Result<()> {
        self.to.write_all(line.as_bytes())?;
        self.to.write_all(b"\n")?;
        self.to.flush()
    }

    /// Forward an `option` line and return the child's reply (remembered for [`Relayed::respawn`]).
    pub fn option(&mut self, line: &str) -> anyhow::Result<String> {
        self.options.push(line.to_string());
        self.send(line)?;
        Ok(self.recv()?.unwrap_or_else(|| "error helper exited".into()))
    }

    /// One reply line (without newline); `None` when the child closed its output.
    pub fn recv(&mut self) -> std::io::Result<Option<String>> {
        let mut buf = Vec::new();
        if self.from.read_until(b'\n', &mut buf)? == 0 {
            return Ok(None);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// Reply lines up to (not including) the blank line.
    pub fn recv_block(&mut self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        loop {
            match self.recv()? {
                None => bail!("git remote helper for the relayed URL exited unexpectedly"),
                Some(l) if l.is_empty() => return Ok(out),
                Some(l) => out.push(l),
            }
        }
    }
}
