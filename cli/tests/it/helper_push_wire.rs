//! The one-connection push over ssh and git:// (the helper's own receive-pack connection driven by
//! `git send-pack --stateless-rpc`): git's exact output for the user's refs, and a server that drops the
//! connection instead of answering.

use std::path::Path;

use crate::env::TestEnv;
use crate::fixtures::{checkpoint, cp_ref, hex_id, path_str, queued, ref_value, write_checkpoint};
use crate::transports::{Kind, Served};

/// Object IDs differ between the twin clones (commit dates); compare everything else.
fn without_oids(line: &str) -> String {
    line.split_inclusive([' ', '\t', '.'])
        .map(|w| {
            let word = w.trim_end_matches([' ', '\t', '.']);
            if word.len() >= 7 && word.bytes().all(|b| b.is_ascii_hexdigit()) {
                w.replacen(word, "<oid>", 1)
            } else {
                w.to_string()
            }
        })
        .collect()
}

/// The ref lines of `git push --porcelain` output (without the `To <url>` line, which names the URL).
fn porcelain_refs(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.contains('\t'))
        .map(without_oids)
        .collect()
}

/// The status lines of a human-readable push (` ! [rejected] …`, ` * [new branch] …`, `   a..b  …`).
fn status_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.contains(" -> "))
        .map(without_oids)
        .collect()
}

/// Two clones of `server.git` at the same commit: one pushing through `entire::`, one plain.
fn twins(s: &Served) -> (std::path::PathBuf, std::path::PathBuf) {
    let ours = s.clone_local("ours");
    let env = &s.env;
    let url = s.url("server.git");
    env.git(env.path(), &["clone", "-q", &url, "plain"]);
    (ours, env.path().join("plain"))
}

/// Run the same push in both clones against two identical servers and compare what git printed.
fn same_output(env: &TestEnv, ours: &Path, plain: &Path, args: &[&str], porcelain: bool) {
    let a = env.run(ours, "git", args);
    let b = env.run(plain, "git", args);
    assert_eq!(
        a.status, b.status,
        "exit codes\nours:\n{}\nplain:\n{}",
        a.stderr, b.stderr
    );
    let (ours_lines, plain_lines) = if porcelain {
        (porcelain_refs(&a.stdout), porcelain_refs(&b.stdout))
    } else {
        (status_lines(&a.stderr), status_lines(&b.stderr))
    };
    assert!(!plain_lines.is_empty(), "{args:?}: {}", b.stderr);
    assert_eq!(
        ours_lines, plain_lines,
        "{args:?}\nours:\n{}\nplain:\n{}",
        a.stderr, b.stderr
    );
}

fn parity(kind: Kind) {
    let s = Served::new(kind);
    let env = &s.env;
    let (ours, plain) = twins(&s);
    // Plain pushes to its own copy of the server; ours to server.git: both start equal.
    let twin = s.path("twin.git");
    std::fs::remove_dir_all(&twin).ok();
    env.git(
        env.path(),
        &[
            "clone",
            "-q",
            "--bare",
            s.path("server.git").to_str().expect("utf-8"),
            twin.to_str().expect("utf-8"),
        ],
    );
    env.git(&plain, &["remote", "set-url", "origin", &s.url("twin.git")]);
    for (repo, srv) in [(&ours, "server.git"), (&plain, "twin.git")] {
        s.hook(
            srv,
            "update",
            "case \"$1\" in refs/heads/blocked) echo 'blocked is frozen' >&2; exit 1;; esac; exit 0",
        );
        env.git(repo, &["commit", "-q", "--allow-empty", "-m", "work"]);
        env.git(repo, &["branch", "blocked"]);
        env.git(repo, &["branch", "side"]);
    }
    same_output(
        env,
        &ours,
        &plain,
        &["push", "--porcelain", "origin", "main", "side", "blocked"],
        true,
    );
    // Rewrite main: non-fast-forward rejection, then --atomic with a hook-refused ref, then a forced update.
    for repo in [&ours, &plain] {
        env.git(
            repo,
            &[
                "commit",
                "-q",
                "--amend",
                "--allow-empty",
                "-m",
                "rewritten",
            ],
        );
    }
    same_output(env, &ours, &plain, &["push", "origin", "main"], false);
    // Client-side atomic failure: main is not a fast-forward, so the new branch is not pushed either.
    for repo in [&ours, &plain] {
        env.git(repo, &["branch", "fresh"]);
    }
    same_output(
        env,
        &ours,
        &plain,
        &["push", "--atomic", "origin", "main", "fresh"],
        false,
    );
    same_output(
        env,
        &ours,
        &plain,
        &["push", "--atomic", "--force", "origin", "main", "blocked"],
        false,
    );
    same_output(
        env,
        &ours,
        &plain,
        &["push", "--porcelain", "--force", "origin", "main", ":side"],
        true,
    );
}

#[test]
fn status_lines_match_plain_git_over_real_sshd_and_daemon() {
    parity(Kind::Sshd);
    parity(Kind::Daemon);
}

/// A pre-receive hook that kills receive-pack when checkpoint refs arrive: the server hangs up without a
/// status report (dulwich refuses that way).
fn dropping_server(kind: Kind) {
    let s = Served::new(kind);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    s.hook(
        "server.git",
        "pre-receive",
        "if grep -q ' refs/entire/'; then kill -9 $PPID; exit 1; fi",
    );
    let id = hex_id(3);
    checkpoint(env, &local, &id);
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    let out = env.run(&local, "git", ["push", "origin", "main"]).ok();
    assert!(
        out.stderr.contains("pushing your refs without them"),
        "{kind:?}: {}",
        out.stderr
    );
    assert_eq!(
        ref_value(env, &server, "refs/heads/main"),
        ref_value(env, &local, "refs/heads/main"),
        "{kind:?}: the user's ref landed"
    );
    assert_eq!(ref_value(env, &server, &cp_ref(&id)), None);
    assert_eq!(queued(env, &local), vec![cp_ref(&id)], "{kind:?}");
}

#[test]
fn a_server_dropping_the_connection_still_gets_the_users_refs() {
    for kind in [Kind::Sshd, Kind::Daemon, Kind::File] {
        dropping_server(kind);
    }
}

#[test]
fn many_queued_checkpoints_still_one_connection() {
    let s = Served::new(Kind::Sshd);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    // On the server already: an unrelated checkpoint. (A checkpoint both sides wrote is merged, which takes a
    // fetch and a second push: `shared_recover`.)
    let other = env.repo("other");
    let unrelated = hex_id(99);
    write_checkpoint(env, &other, &unrelated, None);
    env.git(
        &other,
        &["push", "-q", path_str(&server), &cp_ref(&unrelated)],
    );
    let ids: Vec<String> = (1..=40).map(hex_id).collect();
    for id in &ids {
        checkpoint(env, &local, id);
    }
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "work"]);
    let before = s.connections().expect("sshd log");
    let out = env.run(&local, "git", ["push", "origin", "main"]).ok();
    assert_eq!(s.connections(), Some(before + 1), "{}", s.log());
    assert!(
        out.stderr.contains("pushed 40 checkpoint(s)"),
        "{}",
        out.stderr
    );
    assert!(queued(env, &local).is_empty(), "{:?}", queued(env, &local));
    assert!(ref_value(env, &server, &cp_ref(&unrelated)).is_some());
    for id in &ids {
        assert!(ref_value(env, &server, &cp_ref(id)).is_some(), "{id}");
    }
    // Nothing of the user's to push and nothing queued: git never runs the push, the listing ends cleanly.
    let out = env.run(&local, "git", ["push", "origin", "main"]).ok();
    assert!(
        out.stderr.contains("Everything up-to-date"),
        "{}",
        out.stderr
    );
    assert_eq!(s.connections(), Some(before + 2));
}
