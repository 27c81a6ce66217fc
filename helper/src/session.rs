//! Session setup shared by both modes: arguments, repository, endpoint, mode choice, and the checkpoint side
//! effects (push summary, fetch pull-along) that must never fail the user's operation.

use std::path::PathBuf;

use anyhow::{bail, Context};
use entire::git::cmd as gitcmd;
use entire::git::repo::Repo;
use entire::sync::fetch;
use entire::sync::linked::Walk;
use entire::sync::push::Outcome;
use entire::sync::remote::{self, Endpoint};

use entire::model::refname::STAGING_PREFIX;
use entire::sync::push::{PushSpec, RefStatus, Rejection};

/// Whether a remote ref goes into the `list for-push` answer. A ref under `refs/entire/` is listed only when the
/// local repository has a ref of that name (and it is not a staging ref): git then sees its old value (a
/// `refs/*:refs/*` push of an existing checkpoint is "up to date", not a failed creation), while a checkpoint
/// the remote alone holds stays invisible, so `--mirror`/`--prune` can never delete it.
pub fn listed_for_push(repo: Option<&Repo>, name: &str) -> bool {
    if !name.starts_with("refs/entire/") {
        return true;
    }
    if name.starts_with(STAGING_PREFIX) {
        return false;
    }
    repo.is_some_and(|r| matches!(r.find_ref(name), Ok(Some(_))))
}

/// True for a push line that would push or delete a staging ref (`refs/entire/push-queue/…`): only a push
/// run itself moves those (a `--mirror` push sees a concurrent run's; a dead run's are removed before).
fn touches_staging(spec: &PushSpec) -> bool {
    spec.src.starts_with(STAGING_PREFIX) || spec.dst.starts_with(STAGING_PREFIX)
}

use crate::protocol::{parse_command, Command, Io, Options};

/// Everything a mode needs to serve git.
pub struct Session {
    pub io: Io,
    pub opts: Options,
    pub endpoint: Endpoint,
    pub repo: Option<Repo>,
    /// The remote name or `entire::<address>` git passed as argv[1].
    pub argv1: String,
    /// Push lines refused before the push (staging refs), reported to git with the batch's statuses.
    pub refused: Vec<(String, RefStatus)>,
}

/// What git asked for on the command line: a session to serve, or a one-shot answer (`--help`, `--version`).
pub enum Start {
    Serve(Box<Session>),
    Done,
}

/// Parse the arguments, open the repository and resolve the endpoint.
pub fn start(args: &[String], help: &dyn Fn() -> String) -> anyhow::Result<Start> {
    match args.first().map(String::as_str) {
        Some("-h" | "--help") => {
            println!("{}", help());
            return Ok(Start::Done);
        }
        Some("-V" | "--version") => {
            println!("git-remote-entire {}", env!("CARGO_PKG_VERSION"));
            return Ok(Start::Done);
        }
        _ => {}
    }
    let Some(argv1) = args.first() else {
        bail!("usage: git-remote-entire <remote> [<url>] (git runs this helper for entire::<address> URLs)");
    };
    if gitcmd::depth() > 0 {
        bail!(
            "refusing to run inside itself: {} resolves to an entire:: URL again (check url.<base>.insteadOf)",
            args.get(1).unwrap_or(argv1)
        );
    }
    let repo = open_repo();
    let endpoint =
        remote::resolve_helper_args(repo.as_ref(), argv1, args.get(1).map(String::as_str))
            .with_context(|| format!("cannot resolve {argv1}"))?;
    tracing::debug!(target: "entire::helper", ?endpoint, "session start");
    // git checked `protocol.entire.allow`; the transport behind it is ours to check, before any connection.
    for url in [&endpoint.fetch_url, &endpoint.push_url] {
        entire::sync::policy::check(repo.as_ref(), url)?;
    }
    if let Some(repo) = &repo {
        remove_dead_staging(repo);
    }
    Ok(Start::Serve(Box::new(Session {
        io: Io::new(),
        opts: Options::default(),
        endpoint,
        repo,
        argv1: argv1.clone(),
        refused: Vec::new(),
    })))
}

/// Before a push, delete the staging refs of push runs that were killed (`refs/entire/push-queue/<run>/…`
/// whose run lock nobody holds). This runs before the helper answers `capabilities`, and `git push` waits for
/// that answer before it reads the local refs, so `--mirror` (or a `refs/*` refspec) never sees them.
fn remove_dead_staging(repo: &Repo) {
    let argv = crate::wanted::parent_git_argv();
    let pushing = argv
        .as_deref()
        .is_some_and(|argv| crate::wanted::subcommand_name(argv) == Some("push"));
    tracing::debug!(target: "entire::helper", ?argv, pushing, "dead staging refs check");
    if !pushing {
        return;
    }
    if let Err(e) = entire::sync::push::runs::remove_dead(repo) {
        tracing::info!(target: "entire::helper", "cannot remove staging refs of a dead push run: {e}");
    }
}

/// The repository git runs us for: `GIT_DIR` when set, else none (`git ls-remote` outside a repository).
fn open_repo() -> Option<Repo> {
    let dir = std::env::var_os("GIT_DIR")?;
    let dir = PathBuf::from(dir);
    match Repo::discover(&dir) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(target: "entire::helper", "cannot open the repository at {}: {e}", dir.display());
            None
        }
    }
}

impl Session {
    /// Whether checkpoints join a push to this endpoint.
    pub fn checkpoints_here(&self) -> bool {
        let Some(repo) = &self.repo else {
            return false;
        };
        match remote::checkpoints_go_to(repo, &self.endpoint) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("warning: entire: checkpoints not pushed: {e}");
                false
            }
        }
    }

    /// Whether a push to this endpoint would carry queued checkpoints (a cheap look at the queue file) or the
    /// legacy branch of a mirroring rollout that the remote is not known to hold at its local value.
    pub fn checkpoints_pending(&self) -> bool {
        let Some(repo) = &self.repo else {
            return false;
        };
        let queue = entire::store::queue::Queue::new(&repo.common_dir());
        let queued = std::fs::metadata(queue.path())
            .map(|m| m.len() > 0)
            .unwrap_or(false);
        let shared = || {
            let remote = self.remote_name();
            entire::sync::shared::which::legacy_pending(repo, remote.as_deref())
        };
        (queued || shared()) && self.checkpoints_here()
    }

    /// Tell the user what happened to checkpoints (one line at normal verbosity).
    pub fn report_push(&self, outcome: &Outcome) {
        if self.opts.verbosity == 0 {
            return;
        }
        for note in &outcome.notes {
            eprintln!("{note}");
        }
        if let Some(summary) = &outcome.checkpoints {
            if let Some(line) = summary.line(self.endpoint.display()) {
                eprintln!("{line}");
            }
        }
    }

    /// Pull along checkpoints for the commits selected by `walk`; problems are warnings, never failures.
    pub fn pull_along(&self, walk: &Walk) {
        let Some(repo) = &self.repo else {
            return;
        };
        let url = match remote::configured_checkpoint_remote(repo) {
            Ok(Some(name)) => match remote::resolve(Some(repo), &name) {
                Ok(e) => e.fetch_url,
                Err(e) => {
                    eprintln!("warning: entire: checkpoints not fetched: {e}");
                    return;
                }
            },
            Ok(None) => self.endpoint.fetch_url.clone(),
            Err(e) => {
                eprintln!("warning: entire: checkpoints not fetched: {e}");
                return;
            }
        };
        match fetch::pull_along(repo, &url, walk) {
            Ok(r) => {
                for why in &r.refused {
                    eprintln!("warning: entire: refused a ref {url} serves: {why}");
                }
                if r.fetched > 0 && self.opts.verbosity > 0 {
                    eprintln!("entire: fetched {} checkpoint(s)", r.fetched);
                }
                tracing::debug!(target: "entire::helper", ?r, "pull-along");
            }
            Err(e) => eprintln!("warning: entire: checkpoints not fetched from {url}: {e}"),
        }
    }
}

impl Session {
    /// Read the rest of a push batch (after its `first` line) up to the blank line. `option` lines may come
    /// inside the batch; `answer` records each one and returns the reply line for git.
    pub fn read_push_batch(
        &mut self,
        first: String,
        mut answer: impl FnMut(&mut Session, &str, &str, &str) -> anyhow::Result<String>,
    ) -> anyhow::Result<Vec<PushSpec>> {
        let mut raw = vec![first];
        loop {
            let Some(line) = self.io.read_line()? else {
                bail!("git ended the session inside a push batch");
            };
            match parse_command(&line) {
                Command::Push { spec } => raw.push(spec),
                Command::Option { name, value } => {
                    let reply = answer(self, &line, &name, &value)?;
                    self.io.reply(&[reply])?;
                }
                Command::End => break,
                other => bail!("unexpected {other:?} inside a push batch"),
            }
        }
        let specs: Vec<PushSpec> = raw
            .iter()
            .map(|r| {
                PushSpec::parse(r)
                    .with_context(|| format!("malformed push line from git: push {r}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let (staging, specs): (Vec<PushSpec>, Vec<PushSpec>) =
            specs.into_iter().partition(touches_staging);
        self.refused = staging
            .into_iter()
            .map(|spec| {
                let why = "staging ref of an entire push, never pushed".to_string();
                (spec.dst, RefStatus::Rejected(Rejection::Failed(why)))
            })
            .collect();
        Ok(specs)
    }

    /// Report a push's checkpoint side on stderr, then give git one status line per user ref and the blank
    /// line that ends the batch.
    /// The configured remote this session pushes to: argv[1] when it names one, else the remote the address
    /// named (`entire::origin`).
    pub fn remote_name(&self) -> Option<String> {
        let configured = |name: &str| {
            self.repo
                .as_ref()
                .and_then(|r| r.config_string(&format!("remote.{name}.url")))
                .is_some()
        };
        if !self.argv1.contains(':') && !self.argv1.contains('/') && configured(&self.argv1) {
            return Some(self.argv1.clone());
        }
        self.endpoint.name.clone()
    }

    pub fn finish_push(&mut self, outcome: &Outcome) -> anyhow::Result<()> {
        self.report_push(outcome);
        let mut lines: Vec<String> = self
            .refused
            .iter()
            .chain(&outcome.user)
            .map(|(dst, st)| st.helper_line(dst))
            .collect();
        lines.push(String::new());
        self.io.reply(&lines)?;
        Ok(())
    }
}
