//! `entire::<url>` behaves exactly like the plain URL, and git's settings win: the same fetch, clone or
//! ls-remote is run against the plain URL and against `entire::<url>` (file://, git daemon, smart HTTP, ssh),
//! comparing refs, exit codes and the user-visible status lines; `git -c` / `GIT_CONFIG_*` and git's
//! transport policy are honoured by every in-process read.

use std::path::Path;

use crate::env::{Run, TestEnv};
use crate::fixtures::{cp_ref, hex_id, path_str, ref_value, write_checkpoint};
use crate::transports::{Kind, Served};

const NS: &str = "refs/entire/checkpoints/";

/// Run `git <config args…> entire fetch <id>` in `dir` with extra environment variables.
fn entire_fetch(
    env: &TestEnv,
    dir: &Path,
    vars: &[(&str, &str)],
    config: &[&str],
    id: &str,
) -> Run {
    let mut c = env.cmd("git", dir);
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c
        .args(config)
        .args(["entire", "fetch", id])
        .output()
        .expect("runs");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        stdout_bytes: out.stdout,
    }
}

#[test]
fn git_config_overrides_win_for_in_process_settings() {
    let env = TestEnv::new();
    let empty = env.bare("empty.git");
    let full = env.bare("full.git");
    let seed = env.repo("seed");
    let id = hex_id(7);
    write_checkpoint(&env, &seed, &id, None);
    env.git(
        &seed,
        &["push", "-q", path_str(&full), &format!("{NS}*:{NS}*")],
    );
    let local = env.repo("local");
    env.git(&local, &["remote", "add", "origin", path_str(&empty)]);
    let forget = || env.git(&local, &["update-ref", "-d", &cp_ref(&id)]);
    let fetched = || ref_value(&env, &local, &cp_ref(&id)).is_some();
    // The configured checkpoint remote (origin) lacks the checkpoint.
    entire_fetch(&env, &local, &[], &[], &id).code(1);
    // A remote that exists only on the command line, chosen by `entire.remote`, also only on the command line.
    let remote_url = format!("remote.cmdline.url={}", path_str(&full));
    let config = ["-c", &remote_url, "-c", "entire.remote=cmdline"];
    entire_fetch(&env, &local, &[], &config, &id).ok();
    assert!(fetched());
    forget();
    // `url.<base>.insteadOf` given with `-c` rewrites the checkpoint remote's URL as git would.
    let base = format!("url.{}.insteadOf={}", path_str(&full), path_str(&empty));
    entire_fetch(&env, &local, &[], &["-c", &base], &id).ok();
    assert!(fetched());
    forget();
    // The same settings through GIT_CONFIG_COUNT; `-c` comes later in git's order and wins over it.
    let vars = [
        ("GIT_CONFIG_COUNT", "2"),
        ("GIT_CONFIG_KEY_0", "remote.count.url"),
        ("GIT_CONFIG_VALUE_0", path_str(&full)),
        ("GIT_CONFIG_KEY_1", "entire.remote"),
        ("GIT_CONFIG_VALUE_1", "count"),
    ];
    entire_fetch(&env, &local, &vars, &["-c", "entire.remote=origin"], &id).code(1);
    entire_fetch(&env, &local, &vars, &[], &id).ok();
    assert!(fetched());
}

/// What a scenario left behind, for comparison between the plain URL and `entire::<url>`.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    code: i32,
    /// `git for-each-ref` of the target repository (plus HEAD's target), or `git ls-remote`'s stdout.
    refs: String,
    /// The user-visible status lines on stderr, with the URL spelled the same way.
    status: Vec<String>,
}

/// The stderr lines a user reads as the result (ref updates, warnings, errors), URL-normalised.
fn status_lines(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .map(|l| l.replace("entire::", ""))
        .filter(|l| {
            let t = l.trim_start();
            t.starts_with('*')
                || t.starts_with('+')
                || t.starts_with('!')
                || t.starts_with("warning:")
                || t.starts_with("fatal:")
                || t.starts_with("error:")
                || t.starts_with("From ")
                || l.contains(" -> ")
        })
        .collect()
}

/// The refs of a repository a scenario wrote (`FETCH_HEAD` included when present).
fn repo_refs(env: &TestEnv, dir: &Path, with_head: bool) -> String {
    if !dir.exists() {
        return "(no repository)".into();
    }
    let mut out = env
        .run(
            dir,
            "git",
            [
                "for-each-ref",
                "--format=%(objectname) %(refname) %(symref)",
            ],
        )
        .stdout;
    if with_head {
        out.push_str(&env.run(dir, "git", ["symbolic-ref", "-q", "HEAD"]).stdout);
    }
    let fetch_head = ["FETCH_HEAD", ".git/FETCH_HEAD"]
        .iter()
        .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
        .unwrap_or_default();
    out + &fetch_head.replace("entire::", "")
}

/// One scenario: `args` with `{url}` replaced; `{dir}` is a fresh directory per run. `init`: run inside a
/// freshly initialised repository (fetch) instead of the environment root (clone, ls-remote).
struct Scenario {
    name: &'static str,
    repo: &'static str,
    args: &'static [&'static str],
    init: bool,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "clone",
        repo: "server.git",
        args: &["clone", "{url}", "{dir}"],
        init: false,
    },
    Scenario {
        name: "clone-empty",
        repo: "empty.git",
        args: &["clone", "{url}", "{dir}"],
        init: false,
    },
    Scenario {
        name: "clone-unborn",
        repo: "unborn.git",
        args: &["clone", "{url}", "{dir}"],
        init: false,
    },
    Scenario {
        name: "clone-mirror",
        repo: "server.git",
        args: &["clone", "--mirror", "{url}", "{dir}"],
        init: false,
    },
    Scenario {
        name: "ls-remote",
        repo: "server.git",
        args: &["ls-remote", "{url}"],
        init: false,
    },
    Scenario {
        name: "ls-remote-empty",
        repo: "empty.git",
        args: &["ls-remote", "{url}"],
        init: false,
    },
    Scenario {
        name: "ls-remote-pattern",
        repo: "server.git",
        args: &["ls-remote", "{url}", "commits"],
        init: false,
    },
    Scenario {
        name: "fetch-notes",
        repo: "server.git",
        args: &["fetch", "{url}", "refs/notes/commits"],
        init: true,
    },
    Scenario {
        name: "fetch-changes-glob",
        repo: "server.git",
        args: &["fetch", "{url}", "refs/changes/*:refs/changes/*"],
        init: true,
    },
    Scenario {
        name: "fetch-pull",
        repo: "server.git",
        args: &["fetch", "{url}", "+refs/pull/1/head:refs/remotes/pr/1"],
        init: true,
    },
    Scenario {
        name: "fetch-short-names",
        repo: "server.git",
        args: &["fetch", "{url}", "main", "tag", "v1"],
        init: true,
    },
    Scenario {
        name: "fetch-missing",
        repo: "server.git",
        args: &["fetch", "{url}", "refs/heads/nope"],
        init: true,
    },
];

/// Serve `server.git` with refs outside heads and tags, an empty repository and one with an unborn HEAD.
fn parity_server(kind: Kind) -> Served {
    let s = Served::new(kind);
    let env = &s.env;
    let seed = env.path().join("seed");
    env.git(&seed, &["tag", "-a", "-m", "v1", "v1"]);
    env.git(&seed, &["notes", "add", "-m", "a note"]);
    let head = env.git(&seed, &["rev-parse", "HEAD"]);
    for r in [
        "refs/changes/01/1/1",
        "refs/changes/02/2/1",
        "refs/pull/1/head",
    ] {
        env.git(&seed, &["update-ref", r, &head]);
    }
    s.push_plain(
        &seed,
        &[
            "--tags",
            "refs/notes/*:refs/notes/*",
            "refs/changes/*:refs/changes/*",
            "refs/pull/*:refs/pull/*",
        ],
    );
    s.bare("empty.git");
    let unborn = s.bare("unborn.git");
    env.git(&seed, &["push", "-q", path_str(&unborn), "main:side"]);
    env.git(&unborn, &["symbolic-ref", "HEAD", "refs/heads/trunk"]);
    s
}

fn run_scenario(s: &Served, sc: &Scenario, via_helper: bool) -> Outcome {
    let env = &s.env;
    let tag = if via_helper { "entire" } else { "plain" };
    let dir = env.path().join(format!("{}-{tag}", sc.name));
    let url = match via_helper {
        true => format!("entire::{}", s.url(sc.repo)),
        false => s.url(sc.repo),
    };
    let args: Vec<String> = sc
        .args
        .iter()
        .map(|a| a.replace("{url}", &url).replace("{dir}", path_str(&dir)))
        .collect();
    let cwd = if sc.init {
        env.git(env.path(), &["init", "-q", path_str(&dir)]);
        dir.clone()
    } else {
        env.path().to_path_buf()
    };
    let run = env.run(&cwd, "git", &args);
    let refs = if sc.args[0] == "ls-remote" {
        run.stdout.clone()
    } else {
        repo_refs(env, &dir, true)
    };
    Outcome {
        code: run.status,
        refs: refs.replace(path_str(&dir), "{dir}"),
        status: status_lines(&run.stderr),
    }
}

/// Every scenario, plain and through the helper; returns the names of those that differ, with both outcomes.
fn compare_all(kind: Kind) {
    let s = parity_server(kind);
    let mut differ = Vec::new();
    for sc in SCENARIOS {
        let plain = run_scenario(&s, sc, false);
        let helper = run_scenario(&s, sc, true);
        if plain != helper {
            differ.push(format!(
                "{}:\n  plain:  {plain:?}\n  entire: {helper:?}",
                sc.name
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{kind:?}: entire:: differs from the plain URL in\n{}",
        differ.join("\n")
    );
}

#[test]
fn fetch_clone_ls_remote_parity_over_file() {
    compare_all(Kind::File);
}

#[test]
fn fetch_clone_ls_remote_parity_over_git_daemon() {
    compare_all(Kind::Daemon);
}

#[test]
fn fetch_clone_ls_remote_parity_over_http() {
    compare_all(Kind::Http);
}

#[test]
fn fetch_clone_ls_remote_parity_over_ssh() {
    compare_all(Kind::Ssh);
}

#[test]
fn git_transport_policy_applies_behind_entire() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let url = s.url("server.git");
    let local = s.clone_local("local");
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "new"]);
    let before = ref_value(env, &s.path("server.git"), "refs/heads/main");
    let refused = |vars: &[(&str, &str)], args: &[&str]| {
        for via in [url.clone(), format!("entire::{url}")] {
            let mut c = env.cmd("git", &local);
            for (k, v) in vars {
                c.env(k, v);
            }
            let full: Vec<String> = args.iter().map(|a| a.replace("{url}", &via)).collect();
            let out = c.args(&full).output().expect("runs");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(128), "{via} {args:?}: {stderr}");
            assert!(
                stderr.contains("transport 'file' not allowed"),
                "{via} {args:?}: {stderr}"
            );
        }
    };
    let never = ["-c", "protocol.file.allow=never"];
    refused(&[], &[never[0], never[1], "ls-remote", "{url}"]);
    refused(&[], &[never[0], never[1], "push", "{url}", "main"]);
    refused(&[], &[never[0], never[1], "fetch", "{url}"]);
    refused(
        &[],
        &[
            "-c",
            "protocol.allow=never",
            "-c",
            "protocol.entire.allow=always",
            "ls-remote",
            "{url}",
        ],
    );
    refused(
        &[("GIT_ALLOW_PROTOCOL", "entire:ssh")],
        &["ls-remote", "{url}"],
    );
    // `user`: refused when git says the URL did not come from the user (submodules).
    refused(
        &[("GIT_PROTOCOL_FROM_USER", "0")],
        &[
            "-c",
            "protocol.entire.allow=always",
            "push",
            "{url}",
            "main",
        ],
    );
    assert_eq!(
        ref_value(env, &s.path("server.git"), "refs/heads/main"),
        before,
        "nothing pushed"
    );
    // Allowed explicitly: both work.
    let mut c = env.cmd("git", &local);
    c.env("GIT_ALLOW_PROTOCOL", "entire:file");
    let out = c
        .args(["push", &format!("entire::{url}"), "main"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `git entire push --reconcile` lists in-process: the same policy.
    let run = env.run(
        &local,
        "git",
        [
            "-c",
            "protocol.file.allow=never",
            "entire",
            "push",
            "--reconcile",
            &url,
        ],
    );
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("transport 'file' not allowed"),
        "{}",
        run.stderr
    );
}

#[test]
fn policy_outside_a_repository_and_identity_from_git_c() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let url = s.url("server.git");
    // Global config, no repository: plain git refuses, so must the helper.
    std::fs::write(
        env.path().join("gitconfig-global"),
        "[protocol \"file\"]\n\tallow = never\n",
    )
    .expect("global config");
    let outside = env.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    for via in [url.clone(), format!("entire::{url}")] {
        let run = env.run(
            &outside,
            "git",
            ["-c", "protocol.entire.allow=always", "ls-remote", &via],
        );
        assert_eq!(run.status, 128, "{via}: {}", run.stderr);
        assert!(
            run.stderr.contains("transport 'file' not allowed"),
            "{via}: {}",
            run.stderr
        );
    }
    std::fs::write(env.path().join("gitconfig-global"), "").expect("global config");
    // `git -c user.name/user.email` is the identity of a checkpoint write, as for `git commit`.
    let repo = env.repo("ident");
    crate::fixtures::set_mode(&repo, Some("refs-v1"));
    let dir = crate::fixtures::session(env, "s", r#"{"session_id": "s-1"}"#, b"{}\n");
    let mut c = env.cmd("git", &repo);
    for var in [
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ] {
        c.env_remove(var);
    }
    let out = c
        .args([
            "-c",
            "user.name=From Dash C",
            "-c",
            "user.email=c@example.com",
            "entire",
            "write",
            path_str(&dir),
        ])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let who = env.git(
        &repo,
        &["log", "-1", "--format=%an <%ae>|%cn <%ce>", &cp_ref(&id)],
    );
    assert_eq!(
        who,
        "From Dash C <c@example.com>|From Dash C <c@example.com>"
    );
}
