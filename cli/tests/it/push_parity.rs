//! `git push entire::<url>` behaves like `git push <url>` (issue 9, item 9): the same push from the same local
//! repository into two identical remotes, one through the helper and one plain, over file://, git daemon,
//! smart HTTP and ssh, comparing exit codes, the status lines (`--porcelain` too) and the remotes' refs.
//!
//! The `To …` line: git prints it itself (`transport.c`, `print_one_push_report`) from `transport->url`, which
//! for a remote helper is the URL as given (`entire::<url>`, as for `ext::…`); the helper cannot and does not
//! change it. The comparison therefore strips `entire::` and nothing else, so any other difference in the
//! line (another URL, `entire::origin`) fails.

use std::path::{Path, PathBuf};

use crate::fixtures::{cp_ref, hex_id, path_str, ref_value, write_checkpoint};
use crate::transports::{Kind, Served};

/// What one push left behind.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    code: i32,
    /// The remote's refs (`for-each-ref`).
    refs: String,
    /// stdout (porcelain) and the status lines of stderr, `entire::` and the remote's name normalised.
    status: Vec<String>,
}

/// A served pair of identical remotes (`p-<name>.git`, `e-<name>.git`) seeded from `seed` (main, an annotated
/// tag, notes), and a local clone of them.
struct Pair<'a> {
    s: &'a Served,
    name: &'static str,
}

impl<'a> Pair<'a> {
    fn new(s: &'a Served, name: &'static str, seed: &Path) -> Self {
        for side in ["p", "e"] {
            let dir = s.bare(&format!("{side}-{name}.git"));
            s.env.git(
                seed,
                &[
                    "push",
                    "-q",
                    path_str(&dir),
                    "main",
                    "v1",
                    "refs/notes/commits",
                ],
            );
        }
        Pair { s, name }
    }

    fn url(&self, via_helper: bool) -> String {
        match via_helper {
            true => format!("entire::{}", self.s.url(&format!("e-{}.git", self.name))),
            false => self.s.url(&format!("p-{}.git", self.name)),
        }
    }

    fn remote(&self, via_helper: bool) -> PathBuf {
        let side = if via_helper { "e" } else { "p" };
        self.s.path(&format!("{side}-{}.git", self.name))
    }

    /// Run `git <args>` (`{url}` replaced) in `local` against one side.
    fn push(&self, local: &Path, args: &[&str], via_helper: bool) -> Outcome {
        let env = &self.s.env;
        let url = self.url(via_helper);
        let args: Vec<String> = args.iter().map(|a| a.replace("{url}", &url)).collect();
        let run = env.run(local, "git", &args);
        let norm = |l: &str| {
            l.replace("entire::", "")
                .replace(&format!("/e-{}.git", self.name), "/REMOTE")
                .replace(&format!("/p-{}.git", self.name), "/REMOTE")
        };
        let mut status: Vec<String> = run.stdout.lines().map(norm).collect();
        status.extend(
            run.stderr
                .lines()
                .filter(|l| {
                    let t = l.trim_start();
                    l.starts_with("To ")
                        || l.contains(" -> ")
                        || t.starts_with('!')
                        || t.starts_with("error:")
                        || t.starts_with("fatal:")
                })
                .map(norm),
        );
        let refs = env
            .run(
                &self.remote(via_helper),
                "git",
                ["for-each-ref", "--format=%(objectname) %(refname)"],
            )
            .stdout;
        Outcome {
            code: run.status,
            refs,
            status,
        }
    }

    /// The same push through both; panics with both outcomes when they differ.
    fn same(&self, local: &Path, args: &[&str]) -> Outcome {
        let plain = self.push(local, args, false);
        let helper = self.push(local, args, true);
        assert_eq!(
            plain, helper,
            "{:?} {args:?}: entire:: (right) differs from the plain URL (left)",
            self.s.kind
        );
        helper
    }
}

/// A seed with main, an annotated tag and a note; the local repository is a clone of it with main and the
/// note moved on.
fn setup(s: &Served) -> (PathBuf, PathBuf) {
    let env = &s.env;
    let seed = env.path().join("seed");
    env.git(&seed, &["tag", "-a", "-m", "v1", "v1"]);
    env.git(&seed, &["notes", "add", "-m", "first note"]);
    let local = env.path().join("local");
    env.git(env.path(), &["clone", "-q", path_str(&seed), "local"]);
    env.git(
        &local,
        &["fetch", "-q", "origin", "refs/notes/*:refs/notes/*"],
    );
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    env.git(&local, &["notes", "add", "-m", "second note"]);
    (seed, local)
}

fn push_parity(kind: Kind) {
    let s = Served::new(kind);
    let (seed, local) = setup(&s);
    // A ref outside heads and tags that the remote already has: `old..new`, not `* [new reference]`.
    let notes = Pair::new(&s, "notes", &seed);
    let out = notes.same(&local, &["push", "{url}", "refs/notes/commits"]);
    assert!(
        out.status
            .iter()
            .any(|l| l.contains("..") && l.contains("refs/notes/commits")),
        "{kind:?}: {out:?}"
    );
    let porcelain = Pair::new(&s, "porcelain", &seed);
    porcelain.same(
        &local,
        &["push", "--porcelain", "{url}", "refs/notes/commits"],
    );
    // The user's branch: the `To` line names the URL given.
    let main = Pair::new(&s, "main", &seed);
    main.same(&local, &["push", "{url}", "main"]);
    main.same(
        &local,
        &["push", "--porcelain", "{url}", "main", "refs/notes/commits"],
    );
}

#[test]
fn push_parity_over_file() {
    push_parity(Kind::File);
}

#[test]
fn push_parity_over_git_daemon() {
    push_parity(Kind::Daemon);
}

#[test]
fn push_parity_over_http() {
    push_parity(Kind::Http);
}

#[test]
fn push_parity_over_ssh() {
    push_parity(Kind::Ssh);
}

/// A staging ref a killed push left behind (`refs/entire/push-queue/<run>/…`, no live run holding its lock):
/// `git push --mirror entire::…` neither pushes it nor fails, and the remote ends like a plain `--mirror`.
fn mirror_leaves_staging_refs(kind: Kind) {
    let s = Served::new(kind);
    let env = &s.env;
    let (seed, local) = setup(&s);
    let id = hex_id(3);
    let value = write_checkpoint(env, &local, &id, None);
    let staging = format!(
        "refs/entire/push-queue/deadrun/{}",
        cp_ref(&id).trim_start_matches("refs/entire/checkpoints/")
    );
    env.git(&local, &["update-ref", &staging, &value]);
    let pair = Pair::new(&s, "mirror", &seed);
    let helper = pair.push(&local, &["push", "--mirror", "{url}"], true);
    assert_eq!(helper.code, 0, "{kind:?}: {helper:?}");
    assert!(
        !helper.refs.contains("refs/entire/push-queue/"),
        "{kind:?}: a staging ref was pushed: {helper:?}"
    );
    assert_eq!(
        ref_value(env, &local, &staging),
        None,
        "{kind:?}: the dead run's staging ref is cleaned up"
    );
    // The plain --mirror from the same (now clean) repository leaves the same remote.
    let plain = pair.push(&local, &["push", "--mirror", "{url}"], false);
    assert_eq!(plain.refs, helper.refs, "{kind:?}");
    assert_eq!(plain.status, helper.status, "{kind:?}");
    // The same refs again: everything up to date, as with the plain URL (checkpoints included).
    let again = pair.same(&local, &["push", "--porcelain", "{url}", "refs/*:refs/*"]);
    assert_eq!(again.code, 0, "{kind:?}: {again:?}");
    // --prune never deletes a staging ref the remote has (here: put there by hand).
    let remote = pair.remote(true);
    env.git(&remote, &["update-ref", &staging, &value]);
    let spec = "refs/entire/push-queue/*:refs/entire/push-queue/*";
    env.git(&local, &["push", "-q", "--prune", &pair.url(true), spec]);
    assert_eq!(ref_value(env, &remote, &staging), Some(value), "{kind:?}");
}

#[test]
fn mirror_leaves_staging_refs_over_file() {
    mirror_leaves_staging_refs(Kind::File);
}

#[test]
fn mirror_leaves_staging_refs_over_git_daemon() {
    mirror_leaves_staging_refs(Kind::Daemon);
}

#[test]
fn mirror_leaves_staging_refs_over_http() {
    mirror_leaves_staging_refs(Kind::Http);
}

#[test]
fn mirror_leaves_staging_refs_over_ssh() {
    mirror_leaves_staging_refs(Kind::Ssh);
}
