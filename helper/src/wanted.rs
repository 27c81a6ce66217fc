//! Which refs git is about to ask for, worked out before answering `list` in own mode.
//!
//! The remote-helper `list` command carries no refspecs, yet the listing must hold every ref git's request
//! needs (`git fetch entire::<url> refs/notes/commits`, `refs/changes/*`, `clone --mirror`, `ls-remote`) while
//! the common case keeps its cheap protocol-v2 prefix listing (`HEAD`, `refs/heads/`, `refs/tags/`). The
//! request is read from two places, both only ever widening the listing:
//! - the remote's configured fetch refspecs (`remote.<name>.fetch`, `remote.<name>.mirror`);
//! - the command line of the git process that started us (`git fetch …`, `git clone …`, `git ls-remote …`,
//!   `git push …`: a push needs the remote's old value of every destination, e.g. `refs/notes/commits`),
//!   found by walking up the parent processes through `/proc` (Linux). Elsewhere, or when it cannot be read,
//!   only the configured refspecs count.
//!
//! Invariants: [`from_git_argv`] and [`prefixes_of_refspec`] are pure and total (any input, no panic); the
//! result always contains the default prefixes; `all` means "list every ref" (`refs/` and `HEAD`).

/// The default listing: what a plain `git fetch`/`git clone` asks a protocol-v2 server for.
pub const DEFAULT_PREFIXES: [&str; 3] = ["HEAD", "refs/heads/", "refs/tags/"];

/// What git will ask for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// `git ls-remote`: a listing only (unborn symbolic refs are not shown, as with protocol v2).
    pub ls_remote: bool,
    /// Every ref is needed (`ls-remote`, `clone --mirror`, `fetch --stdin`, a `refs/*` refspec).
    pub all: bool,
    /// Extra prefixes (ending in `/`) or exact names, beyond [`DEFAULT_PREFIXES`].
    pub extra: Vec<String>,
}

impl Request {
    /// The prefixes to list (`HEAD` + `refs/` when everything is needed).
    pub fn prefixes(&self) -> Vec<String> {
        if self.all {
            return vec!["HEAD".into(), "refs/".into()];
        }
        let mut out: Vec<String> = DEFAULT_PREFIXES.iter().map(|p| p.to_string()).collect();
        for p in &self.extra {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        // A name or prefix inside another prefix would be listed twice (git then sees a ref twice: "matches
        // more than one").
        let covered = |p: &String, all: &[String]| {
            all.iter()
                .any(|q| q != p && q.ends_with('/') && p.starts_with(q.as_str()))
        };
        let all = out.clone();
        out.retain(|p| !covered(p, &all));
        out
    }

    /// Widen with one push refspec (configured or given on the command line).
    pub fn add_push_refspec(&mut self, spec: &str) {
        match prefixes_of_push_refspec(spec) {
            Some(ps) if ps.iter().any(|p| p == "refs/") => self.all = true,
            Some(ps) => self.extra.extend(ps),
            None => {}
        }
    }

    /// Widen with one refspec (configured or given on the command line).
    pub fn add_refspec(&mut self, spec: &str) {
        match prefixes_of_refspec(spec) {
            Some(ps) if ps.iter().any(|p| p == "refs/") => self.all = true,
            Some(ps) => self.extra.extend(ps),
            None => {}
        }
    }
}

/// True for a full hexadecimal object ID (SHA-1 or SHA-256).
fn is_oid(s: &str) -> bool {
    matches!(s.len(), 40 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The listing prefixes one fetch refspec needs, `None` for refspecs that need no listing (negative ones, object
/// IDs, an empty source). A glob becomes the directory before its `*`; a short name becomes git's DWIM
/// candidates (`refs/X`, `refs/tags/X`, `refs/heads/X`, `refs/remotes/X`, `refs/remotes/X/HEAD`).
pub fn prefixes_of_refspec(spec: &str) -> Option<Vec<String>> {
    if spec.starts_with('^') {
        return None;
    }
    let spec = spec.strip_prefix('+').unwrap_or(spec);
    let src = spec.split_once(':').map_or(spec, |(s, _)| s);
    if src.is_empty() || is_oid(src) {
        return None;
    }
    if let Some(star) = src.find('*') {
        let dir = &src[..star];
        let dir = &dir[..dir.rfind('/').map_or(0, |i| i + 1)];
        return Some(vec![if dir.starts_with("refs/") {
            dir.to_string()
        } else {
            "refs/".to_string()
        }]);
    }
    if src == "HEAD" || src.starts_with("refs/") {
        return Some(vec![src.to_string()]);
    }
    Some(vec![
        format!("refs/{src}"),
        format!("refs/tags/{src}"),
        format!("refs/heads/{src}"),
        format!("refs/remotes/{src}"),
        format!("refs/remotes/{src}/HEAD"),
    ])
}

/// git's global options that take their value as the next argument.
const GLOBAL_WITH_VALUE: [&str; 6] = [
    "-c",
    "-C",
    "--git-dir",
    "--work-tree",
    "--namespace",
    "--config-env",
];

/// `git fetch` options that take their value as the next argument.
const FETCH_WITH_VALUE: [&str; 14] = [
    "--depth",
    "--deepen",
    "--shallow-since",
    "--shallow-exclude",
    "-o",
    "--server-option",
    "--upload-pack",
    "-j",
    "--jobs",
    "--refmap",
    "--negotiation-tip",
    "--filter",
    "--recurse-submodules-default",
    "--submodule-prefix",
];

/// `git push` options that take their value as the next argument.
const PUSH_WITH_VALUE: [&str; 5] = ["--repo", "--receive-pack", "--exec", "-o", "--push-option"];

/// The listing prefixes one push refspec needs: where it lands on the remote (its destination, else its source),
/// so that git sees the remote's old value (`old..new`, leases, fast-forward checks) as with the plain URL.
pub fn prefixes_of_push_refspec(spec: &str) -> Option<Vec<String>> {
    let spec = spec.strip_prefix('+').unwrap_or(spec);
    let dst = match spec.split_once(':') {
        Some((_, dst)) if !dst.is_empty() => dst,
        Some((src, _)) => src,
        None => spec,
    };
    prefixes_of_refspec(dst)
}

/// What `git push [options] <repo> <refspec>…` needs listed (`--mirror`: everything).
fn push_request(args: &[String]) -> Request {
    let mut req = Request::default();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--mirror" {
            req.all = true;
        } else if a == "--" {
            positional.extend(args[i + 1..].iter().map(String::as_str));
            break;
        } else if PUSH_WITH_VALUE.contains(&a) {
            i += 1;
        } else if !a.starts_with('-') {
            positional.push(a);
        }
        i += 1;
    }
    for spec in positional.iter().skip(1) {
        req.add_push_refspec(spec);
    }
    req
}

/// The git subcommand of `argv` (`git [global options] <cmd> args…`) and its arguments.
fn subcommand(argv: &[String]) -> Option<(&str, &[String])> {
    let mut i = 1;
    while i < argv.len() {
        let a = argv[i].as_str();
        if GLOBAL_WITH_VALUE.contains(&a) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            return Some((a, &argv[i + 1..]));
        }
    }
    None
}

/// The git subcommand of `argv` (`push`, `fetch`, …), if any.
pub fn subcommand_name(argv: &[String]) -> Option<&str> {
    subcommand(argv).map(|(cmd, _)| cmd)
}

/// What the git command line `argv` (argv[0] is `git`) will ask the helper for; `None` when it is not a
/// command that lists through us (e.g. the `git remote-entire` wrapper itself).
pub fn from_git_argv(argv: &[String]) -> Option<Request> {
    let (cmd, args) = subcommand(argv)?;
    let mut req = Request::default();
    match cmd {
        "ls-remote" => {
            req.ls_remote = true;
            req.all = true;
        }
        "clone" => req.all = args.iter().any(|a| a == "--mirror"),
        "push" => return Some(push_request(args)),
        "fetch" | "pull" => {
            let mut positional = Vec::new();
            let mut i = 0;
            while i < args.len() {
                let a = args[i].as_str();
                if a == "--stdin" {
                    req.all = true;
                } else if a == "--" {
                    positional.extend(args[i + 1..].iter().map(String::as_str));
                    break;
                } else if FETCH_WITH_VALUE.contains(&a) {
                    i += 1;
                } else if !a.starts_with('-') {
                    positional.push(a);
                }
                i += 1;
            }
            let multiple = args.iter().any(|a| a == "--multiple" || a == "--all");
            if !multiple {
                for spec in positional.iter().skip(1) {
                    req.add_refspec(spec);
                }
            }
        }
        _ => return None,
    }
    Some(req)
}

/// The command line of the git process that runs this helper (skipping the `git remote-entire` wrapper), read
/// from `/proc`; `None` where that is not possible.
pub fn parent_git_argv() -> Option<Vec<String>> {
    let mut pid = std::os::unix::process::parent_id();
    for _ in 0..4 {
        let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let argv: Vec<String> = raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if from_git_argv(&argv).is_some() {
            return Some(argv);
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so parse after the last ')'.
        pid = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn argv(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn command_lines_table() {
        type Case<'a> = (&'a str, Option<(bool, bool, &'a [&'a str])>);
        let cases: &[Case] = &[
            ("git fetch", Some((false, false, &[]))),
            ("git fetch origin", Some((false, false, &[]))),
            (
                "git -c a=b -C /x fetch entire::u refs/notes/commits",
                Some((false, false, &["refs/notes/commits"])),
            ),
            (
                "git fetch u refs/changes/*:refs/changes/*",
                Some((false, false, &["refs/changes/"])),
            ),
            (
                "git fetch --depth 1 u +refs/pull/*/head:refs/pr/*",
                Some((false, false, &["refs/pull/"])),
            ),
            ("git fetch u refs/*:refs/*", Some((false, true, &[]))),
            ("git fetch --stdin u", Some((false, true, &[]))),
            ("git fetch --multiple a b", Some((false, false, &[]))),
            (
                "git fetch u ^refs/heads/x 0123456789012345678901234567890123456789",
                Some((false, false, &[])),
            ),
            ("git ls-remote u", Some((true, true, &[]))),
            ("git clone u d", Some((false, false, &[]))),
            ("git clone --mirror u", Some((false, true, &[]))),
            ("git push", Some((false, false, &[]))),
            (
                "git push u refs/notes/commits",
                Some((false, false, &["refs/notes/commits"])),
            ),
            (
                "git push --repo r -o x u main:refs/notes/n",
                Some((false, false, &["refs/notes/n"])),
            ),
            (
                "git push u +refs/x/*:refs/y/*",
                Some((false, false, &["refs/y/"])),
            ),
            ("git push u :refs/z", Some((false, false, &["refs/z"]))),
            ("git push --mirror u", Some((false, true, &[]))),
            ("git push u refs/*:refs/*", Some((false, true, &[]))),
            ("git remote-entire origin entire::u", None),
            ("git", None),
        ];
        for (line, want) in cases {
            let got = from_git_argv(&argv(line)).map(|r| (r.ls_remote, r.all, r.extra));
            let want =
                want.map(|(l, a, e)| (l, a, e.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn short_names_get_git_dwim_candidates() {
        let ps = prefixes_of_refspec("notes/commits:x").unwrap_or_default();
        assert!(ps.contains(&"refs/notes/commits".to_string()), "{ps:?}");
        assert_eq!(prefixes_of_refspec("HEAD"), Some(vec!["HEAD".to_string()]));
        assert_eq!(prefixes_of_refspec(":x"), None);
        assert_eq!(prefixes_of_refspec("*:*"), Some(vec!["refs/".to_string()]));
    }

    proptest! {
        #[test]
        fn arbitrary_command_lines_never_panic(args in proptest::collection::vec(".{0,12}", 0..8)) {
            let mut argv = vec!["git".to_string()];
            argv.extend(args);
            if let Some(r) = from_git_argv(&argv) {
                let ps = r.prefixes();
                prop_assert!(ps.contains(&"HEAD".to_string()));
            }
        }

        #[test]
        fn prefixes_never_overlap(specs in proptest::collection::vec("[a-z/*:+]{0,20}", 0..6)) {
            let mut req = Request::default();
            for s in &specs {
                req.add_refspec(s);
                req.add_push_refspec(s);
            }
            let ps = req.prefixes();
            for p in &ps {
                for q in &ps {
                    prop_assert!(p == q || !(q.ends_with('/') && p.starts_with(q.as_str())), "{p} in {q}");
                }
            }
        }

        #[test]
        fn refspec_prefixes_are_refs_or_head(spec in ".{0,30}") {
            for p in prefixes_of_refspec(&spec).unwrap_or_default() {
                prop_assert!(!p.is_empty());
                prop_assert!(!p.contains('*'));
            }
        }
    }
}
