//! Man pages generated from the clap definitions (`git entire __man <dir>` regenerates `man/`).
//!
//! Invariant: the pages in `man/` are exactly [`render_man`] of the current definitions; a test fails when
//! they drift, so `git help entire`, `git entire-migrate --help` and `git help remote-entire` (git turns them
//! into `man git-…`) never lie.

use std::path::PathBuf;

use super::CliError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write the pages into.
    dir: PathBuf,
}

/// The roff source of `cmd`'s man page.
pub fn render_man(cmd: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .expect("rendering into memory cannot fail");
    out
}

/// Every page this crate ships: `(file name, command)`.
pub fn pages() -> Vec<(String, clap::Command)> {
    let migrate = <super::MigrateCli as clap::CommandFactory>::command();
    let entire = <super::Cli as clap::CommandFactory>::command();
    vec![
        ("git-entire-migrate.1".to_string(), migrate),
        ("git-entire.1".to_string(), entire),
        ("git-remote-entire.1".to_string(), remote_helper_command()),
    ]
}

pub fn run(a: Args) -> Result<(), CliError> {
    std::fs::create_dir_all(&a.dir)?;
    for (name, cmd) in pages() {
        let path = a.dir.join(&name);
        std::fs::write(&path, render_man(cmd))?;
        println!("{}", path.display());
    }
    Ok(())
}

const HELPER_ABOUT: &str = "git remote helper for entire::<address> URLs: pushes queued checkpoint refs with the user's refs";

const HELPER_LONG_ABOUT: &str = "\
git runs this helper for any remote address written entire::<address>, and for remotes whose url or pushurl is \
such an address (`git entire install` sets remote.<name>.pushurl = entire::<url>). The address is a URL, a \
path, or the name of a configured remote (entire::origin), resolved like `git remote get-url`; nested \
entire:: prefixes are stripped and a remote that resolves to itself is refused.

PUSH. git's push batch, plus every checkpoint ref queued in <git-common-dir>/entire-checkpoint-push-queue.jsonl \
that still exists locally, goes out in ONE push: the checkpoints are staged under \
refs/entire/push-queue/<run>/ and sent with one glob refspec, fast-forward only, never forced. git reports the \
user's refs exactly as for the plain address; checkpoints that landed leave the queue (only if unchanged \
meanwhile), the others stay queued and the reason is shown in one summary line. A checkpoint problem never \
fails the user's push. With --atomic the checkpoints are pushed separately after the atomic set; when a \
pre-receive hook rejects the whole push because of checkpoint refs, the user's refs are pushed again alone. \
--dry-run dequeues nothing; --force-with-lease, --force-if-includes, --signed and -o are passed through. When git \
has nothing of its own to push it does not call the helper: run `git entire push` to flush the queue.

SHARED REFS. In refs-v1-mirror mode the legacy branch entire/checkpoints/v1 goes out in the same push \
(never onto a remote that has no branch of the user's yet), and the v2 refs are queued like checkpoints; all \
fast-forward only. A shared ref the remote rejects as diverged (or whose update on the server lost a race with \
another push: 'failed to update ref') is recovered: its remote tip is fetched (one fetch for all of them), merged locally (v2: union by checkpoint, the same checkpoint merged by session; legacy \
branch: local-only commits replayed onto the remote tip, a union merge commit when that conflicts), moved by \
compare-and-swap and pushed again, up to three times; anything left is one stderr line and stays queued. A \
checkpoint ref that both machines wrote (the same checkpoint ID) is recovered in the same round trips, its \
sessions merged by slot into a merge commit with both parents; one whose remote value is not a checkpoint commit \
of that ID is never merged: one stderr line, and it stays queued. One recovery per repository runs at a time \
(flock on entire-recover.lock in the git common dir); a push killed during a recovery leaves nothing that blocks \
the next one.

FETCH. Fetch and clone behave like the plain address (depth, shallow and filter options pass through). \
Afterwards checkpoint refs are pulled along in one extra round trip, per entire.fetchCheckpoints. A clone over \
ssh, git:// or file:// (not --mirror; protocol v2) is connected straight to the remote's git-upload-pack, so the \
new clone's HEAD names the remote's branch even when that branch is unborn, as with the plain address.

TRANSPORTS. http(s) and ftp(s) are relayed to git's own git-remote-http(s), so one discovery and one credential \
prompt serve the whole push. ssh, git:// and file:// are served by the helper: refs are listed in-process \
(protocol v2 ls-refs limited to HEAD, refs/heads/, refs/tags/, widened to what the fetch or push needs: the remote's \
fetch and push refspecs and those on the calling git command line, e.g. refs/notes/commits, refs/changes/*, \
clone --mirror, push --mirror, ls-remote; a local repository is read directly), objects move through `git fetch` and `git push \
--porcelain` children. A push over ssh or git:// uses ONE connection, as plain git does: the helper opens the \
remote's git-receive-pack itself (GIT_SSH_COMMAND, core.sshCommand, GIT_SSH and ssh.variant as git applies \
them), answers git's listing from its advertisement and lets `git send-pack --stateless-rpc` push over the same \
connection; with a git proxy or a protocol policy configured, or entire.oneConnectionPush=false, the listing and \
a `git push` child use two connections. A push to a local repository with nothing queued is connected straight to \
git-receive-pack. A checkpoint ref is listed for push only when the local repository has \
it too, and staging refs (refs/entire/push-queue/) never: --mirror and --prune cannot delete either, and a \
--mirror push leaves staging refs behind (those of killed runs are removed first). Checkpoint refs are \
never fetched by git itself: they come through the pull-along, which stores only commits under valid checkpoint \
names. git's transport policy (protocol.<name>.allow, protocol.allow, GIT_ALLOW_PROTOCOL, \
GIT_PROTOCOL_FROM_USER) applies to the transport behind entire:: before any connection.

CONFIGURATION. entire.fetchCheckpoints = referenced (default: checkpoints named by Entire-Checkpoint trailers \
of the newly fetched commits, newest first) | all | none; entire.fetchCheckpointsLimit (default 100); \
entire.remote or strategy_options.checkpoint_remote in .entire/settings.json: the remote that receives \
checkpoints (pushes to other remotes leave the queue alone); entire.pushBatchSize (default 25000 checkpoints \
per push); entire.listPrefixes: extra ref prefixes to list besides heads and tags; protocol.entire.allow=always \
lets recursive submodule operations use the helper.

ENVIRONMENT. ENTIRE_LOG (a tracing filter, e.g. debug) and ENTIRE_LOG_FILE (log to a file instead of stderr). \
GIT_TRANSPORT_HELPER_DEBUG=1 shows git's side of the conversation. Nothing but the protocol is ever written \
to standard output.";

/// The command-line shape of `git-remote-entire` (git passes the arguments; it has no options of its own).
pub fn remote_helper_command() -> clap::Command {
    clap::Command::new("git-remote-entire")
        .version(env!("CARGO_PKG_VERSION"))
        .about(HELPER_ABOUT)
        .long_about(HELPER_LONG_ABOUT)
        .arg(
            clap::Arg::new("remote")
                .required(true)
                .help("The remote's name, or the whole entire::<address> when the address was given on the command line"),
        )
        .arg(clap::Arg::new("address").help("The address without the entire:: prefix"))
}
