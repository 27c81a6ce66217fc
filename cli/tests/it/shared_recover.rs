//! Fetch-and-merge recovery of diverged shared refs (issue #13): two clones write checkpoints concurrently —
//! new ones each, and sessions of the same checkpoint — and both push, one after the other and back again.
//! The remote must end with every checkpoint of both in every layout the mode writes, the shared checkpoint
//! with both sessions (v2 `/main` and `/full` slots aligned), nothing forced, and `git fsck` clean.

use std::path::Path;

use crate::env::TestEnv;
use crate::fixtures::{cp_ref, hex_id, path_str, queued, ref_value};
use crate::transports::{Kind, Served};
use crate::v2_write::{claude_session, claude_transcript, settings};

pub(crate) const LEGACY: &str = "refs/heads/entire/checkpoints/v1";
pub(crate) const MAIN: &str = "refs/entire/checkpoints/v2/main";
pub(crate) const CURRENT: &str = "refs/entire/checkpoints/v2/full/current";

pub(crate) const LEGACY_MIRROR: &str =
    r#"{"strategy_options": {"checkpoint_store": "refs-v1-mirror"}}"#;
pub(crate) const V2_MIRROR: &str =
    r#"{"strategy_options": {"checkpoint_store": "refs-v1-mirror", "checkpoints_v2": true}}"#;
const REFS_ONLY: &str = r#"{"strategy_options": {"checkpoint_store": "refs-v1"}}"#;
pub(crate) const V2_PRIMARY: &str = r#"{"strategy_options": {"checkpoints_version": 2}}"#;

/// Clones `a` and `b` of the server, both with `settings` (`.entire/settings.json`).
pub(crate) fn two_clones(s: &Served, mode: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (a, b) = (s.clone_local("a"), s.clone_local("b"));
    settings(&a, mode);
    settings(&b, mode);
    (a, b)
}

/// Write session `sess-<tag>` into checkpoint `id` (a new checkpoint when `None`); returns the ID.
pub(crate) fn write(env: &TestEnv, repo: &Path, tag: &str, id: Option<&str>) -> String {
    let s = claude_session(env, tag, &format!("sess-{tag}"), &claude_transcript(tag, 1));
    let mut args = vec!["write"];
    if let Some(id) = id {
        args.extend(["--id", id]);
    }
    args.push(path_str(&s));
    env.entire(repo, &args).ok().trimmed().to_string()
}

fn tree_paths(env: &TestEnv, repo: &Path, r: &str) -> String {
    env.git(repo, &["ls-tree", "-r", "--name-only", r])
}

fn cat(env: &TestEnv, repo: &Path, spec: &str) -> Option<String> {
    let out = env.run(repo, "git", ["cat-file", "-p", spec]);
    (out.status == 0).then(|| out.stdout.clone())
}

fn path_of(id: &str) -> String {
    format!("{}/{}", &id[..2], &id[2..])
}

/// The slot (0–3) under `prefix` (`<rev>:<checkpoint dir>/`) whose `metadata.json` is session `sess-<tag>`'s.
fn session_slot(env: &TestEnv, repo: &Path, prefix: &str, tag: &str) -> Option<usize> {
    (0..4).find(|n| {
        cat(env, repo, &format!("{prefix}{n}/metadata.json"))
            .is_some_and(|m| m.contains(&format!("\"sess-{tag}\"")))
    })
}

/// True when `old` is an ancestor of `new` in `repo` (nothing was forced).
pub(crate) fn contains(env: &TestEnv, repo: &Path, old: &str, new: &str) -> bool {
    env.run(repo, "git", ["merge-base", "--is-ancestor", old, new])
        .status
        == 0
}

/// The server holds every checkpoint of `ids` in every layout either clone wrote; returns a description of
/// what is missing (empty when nothing is).
pub(crate) fn missing(
    s: &Served,
    clones: &[&Path],
    ids: &[String],
    shared: &str,
    tags: &[&str],
) -> Vec<String> {
    let env = &s.env;
    let server = s.path("server.git");
    let wrote = |r: &str| clones.iter().any(|c| ref_value(env, c, r).is_some());
    let mut out = Vec::new();
    for id in ids {
        if clones
            .iter()
            .any(|c| ref_value(env, c, &cp_ref(id)).is_some())
            && ref_value(env, &server, &cp_ref(id)).is_none()
        {
            out.push(format!("ref of {id}"));
        }
    }
    for layout in [LEGACY, MAIN, CURRENT] {
        if !wrote(layout) {
            continue;
        }
        let Some(_) = ref_value(env, &server, layout) else {
            out.push(format!("{layout} absent"));
            continue;
        };
        let paths = tree_paths(env, &server, layout);
        for id in ids {
            if !paths.contains(&path_of(id)) {
                out.push(format!("{id} on {layout}"));
            }
        }
    }
    // The checkpoint both wrote has every session: on its own ref (merged by session, issue #13's "every
    // checkpoint of both in every layout")…
    if wrote(&cp_ref(shared)) {
        for tag in tags {
            if session_slot(env, &server, &format!("{}:", cp_ref(shared)), tag).is_none() {
                out.push(format!("session {tag} of {shared} on its ref"));
            }
        }
    }
    // …and on the shared refs, where v2 /full slots hold the transcript of the session that /main's slot
    // names.
    for (layout, transcript) in [(LEGACY, "full.jsonl"), (MAIN, "")] {
        if !wrote(layout) {
            continue;
        }
        for tag in tags {
            let found = session_slot(env, &server, &format!("{layout}:{}/", path_of(shared)), tag);
            let Some(n) = found else {
                out.push(format!("session {tag} of {shared} on {layout}"));
                continue;
            };
            let (raw_ref, raw) = if layout == MAIN {
                (CURRENT, "raw_transcript")
            } else {
                (LEGACY, transcript)
            };
            let text = cat(
                env,
                &server,
                &format!("{raw_ref}:{}/{n}/{raw}", path_of(shared)),
            );
            if !text.is_some_and(|t| t.contains(&format!("of {tag}"))) {
                out.push(format!(
                    "{raw_ref} slot {n} of {shared} is not session {tag}'s"
                ));
            }
        }
    }
    out
}

pub(crate) struct Diverged {
    pub(crate) s: Served,
    pub(crate) a: std::path::PathBuf,
    pub(crate) b: std::path::PathBuf,
    pub(crate) ids: Vec<String>,
    pub(crate) shared: String,
    /// The server's shared refs before b's push (what must never be forced away).
    pub(crate) before: Vec<(&'static str, Option<String>)>,
}

/// Two clones with `mode`: a has pushed; b wrote its own checkpoints and a session into a's shared checkpoint and is about to push.
pub(crate) fn diverged(kind: Kind, mode: &str) -> Diverged {
    let s = Served::new(kind);
    let env = &s.env;
    let server = s.path("server.git");
    let (a, b) = two_clones(&s, mode);
    let shared = hex_id(7);
    let mut ids = vec![write(env, &a, "a1", None), write(env, &b, "b1", None)];
    write(env, &a, "a2", Some(&shared));
    write(env, &b, "b2", Some(&shared));
    ids.push(write(env, &b, "b3", None));
    ids.push(shared.clone());
    env.git(&a, &["commit", "-q", "--allow-empty", "-m", "a"]);
    env.git(&b, &["commit", "-q", "--allow-empty", "-m", "b"]);
    env.run(&a, "git", ["push", "origin", "main"]).ok();
    let before = [LEGACY, MAIN, CURRENT]
        .into_iter()
        .map(|r| (r, ref_value(env, &server, r)))
        .collect();
    Diverged {
        s,
        a,
        b,
        ids,
        shared,
        before,
    }
}

fn two_clones_converge(kind: Kind, mode: &str) {
    let Diverged {
        s,
        a,
        b,
        mut ids,
        shared,
        before: first,
    } = diverged(kind, mode);
    let env = &s.env;
    let server = s.path("server.git");
    // b's own branch lands with git's own status line; the shared refs are merged and land too.
    let out = env
        .run(&b, "git", ["push", "origin", "main:refs/heads/b"])
        .ok();
    assert!(out.stderr.contains("main -> b"), "{}", out.stderr);
    assert!(!out.stderr.contains("not pushed"), "{}", out.stderr);
    assert_eq!(
        ref_value(env, &server, "refs/heads/b"),
        ref_value(env, &b, "refs/heads/main")
    );
    let lost = missing(&s, &[&a, &b], &ids, &shared, &["a2", "b2"]);
    assert!(
        lost.is_empty(),
        "missing after b's push: {lost:?}\n{}",
        out.stderr
    );
    for (r, old) in first.iter() {
        if let (Some(old), Some(new)) = (old, ref_value(env, &server, r)) {
            assert!(contains(env, &server, old, &new), "{r} forced");
        }
    }
    for r in [MAIN, CURRENT] {
        assert!(
            !queued(env, &b).contains(&r.to_string()),
            "{r} dequeued: {:?}",
            queued(env, &b)
        );
    }
    // The other way round: a (behind on every shared ref) writes again and pushes.
    ids.push(write(env, &a, "a3", None));
    let before: Vec<(&str, Option<String>)> = [LEGACY, MAIN, CURRENT]
        .into_iter()
        .map(|r| (r, ref_value(env, &server, r)))
        .collect();
    env.git(&a, &["commit", "-q", "--allow-empty", "-m", "a again"]);
    let out = env.run(&a, "git", ["push", "origin", "main"]).ok();
    assert!(!out.stderr.contains("not pushed"), "{}", out.stderr);
    let lost = missing(&s, &[&a, &b], &ids, &shared, &["a2", "b2"]);
    assert!(
        lost.is_empty(),
        "missing after a's second push: {lost:?}\n{}",
        out.stderr
    );
    for (r, old) in before.iter() {
        if let (Some(old), Some(new)) = (old, ref_value(env, &server, r)) {
            assert!(contains(env, &server, old, &new), "{r} forced");
        }
    }
    env.git(&server, &["fsck", "--no-progress", "--no-dangling"]);
    assert!(
        env.run(&server, "git", ["for-each-ref", "refs/entire-fetch-tmp/"])
            .stdout
            .is_empty(),
        "no scratch refs on the server"
    );
    assert!(
        env.git(&a, &["for-each-ref", "refs/entire-fetch-tmp/"])
            .is_empty(),
        "scratch refs removed"
    );
}

#[test]
fn legacy_mirror_clones_converge_over_file() {
    two_clones_converge(Kind::File, LEGACY_MIRROR);
}

#[test]
fn v2_mirror_clones_converge_over_file() {
    two_clones_converge(Kind::File, V2_MIRROR);
}

#[test]
fn v2_primary_clones_converge_over_file() {
    two_clones_converge(Kind::File, V2_PRIMARY);
}

#[test]
fn v2_mirror_clones_converge_over_git_daemon() {
    two_clones_converge(Kind::Daemon, V2_MIRROR);
}

#[test]
fn v2_mirror_clones_converge_over_http() {
    two_clones_converge(Kind::Http, V2_MIRROR);
}

#[test]
fn v2_mirror_clones_converge_over_ssh() {
    two_clones_converge(Kind::Ssh, V2_MIRROR);
}

#[test]
fn v2_primary_clones_converge_over_sshd() {
    two_clones_converge(Kind::Sshd, V2_PRIMARY);
}

/// `git entire push` (checkpoints only) recovers too, and reports the checkpoints as pushed.
#[test]
fn git_entire_push_recovers_diverged_v2_refs() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let (a, b) = two_clones(&s, V2_PRIMARY);
    let ids = vec![write(env, &a, "a1", None), write(env, &b, "b1", None)];
    env.entire(&a, &["push"]).ok();
    let out = env.entire(&b, &["push"]).ok();
    assert!(!out.stderr.contains("not pushed"), "{}", out.stderr);
    let server = s.path("server.git");
    for r in [MAIN, CURRENT] {
        let paths = tree_paths(env, &server, r);
        for id in &ids {
            assert!(paths.contains(&path_of(id)), "{id} on {r}");
        }
        assert_eq!(ref_value(env, &server, r), ref_value(env, &b, r), "{r}");
    }
    assert!(queued(env, &b).is_empty(), "{:?}", queued(env, &b));
}

/// A push to a bare `entire::<URL>` (no remote name) recovers too: the remote tips are fetched by URL.
fn bare_url_push_recovers(kind: Kind) {
    let s = Served::new(kind);
    let env = &s.env;
    let (a, b) = two_clones(&s, V2_PRIMARY);
    let ids = vec![write(env, &a, "a1", None), write(env, &b, "b1", None)];
    env.git(&a, &["commit", "-q", "--allow-empty", "-m", "a"]);
    env.git(&b, &["commit", "-q", "--allow-empty", "-m", "b"]);
    let url = format!("entire::{}", s.url("server.git"));
    env.run(&a, "git", ["push", url.as_str(), "main"]).ok();
    let out = env
        .run(&b, "git", ["push", url.as_str(), "main:refs/heads/b"])
        .ok();
    assert!(out.stderr.contains("main -> b"), "{}", out.stderr);
    assert!(!out.stderr.contains("not pushed"), "{}", out.stderr);
    let server = s.path("server.git");
    for r in [MAIN, CURRENT] {
        let paths = tree_paths(env, &server, r);
        for id in &ids {
            assert!(paths.contains(&path_of(id)), "{id} on {r}\n{}", out.stderr);
        }
        assert_eq!(ref_value(env, &server, r), ref_value(env, &b, r), "{r}");
    }
    assert!(queued(env, &b).is_empty(), "{:?}", queued(env, &b));
    assert!(
        env.git(&b, &["for-each-ref", "refs/entire-fetch-tmp/"])
            .is_empty(),
        "scratch refs removed"
    );
}

#[test]
fn a_push_to_a_bare_file_url_recovers_diverged_v2_refs() {
    bare_url_push_recovers(Kind::File);
}

#[test]
fn a_push_to_a_bare_http_url_recovers_diverged_v2_refs() {
    bare_url_push_recovers(Kind::Http);
}

/// A per-checkpoint ref both clones wrote (the same checkpoint, different sessions) is merged by session and
/// lands, instead of staying queued as non-fast-forward for ever: through `git entire push` and through the
/// helper (`git push`, with the user's branch).
fn a_checkpoint_ref_both_clones_wrote_is_merged_by_session(kind: Kind, helper: bool) {
    let s = Served::new(kind);
    let env = &s.env;
    let (a, b) = two_clones(&s, REFS_ONLY);
    let shared = hex_id(9);
    write(env, &a, "a1", Some(&shared));
    write(env, &b, "b1", Some(&shared));
    let push = |repo: &Path| {
        if helper {
            env.git(repo, &["commit", "-q", "--allow-empty", "-m", "work"]);
            let branch = repo.file_name().and_then(|n| n.to_str()).expect("name");
            let out = env
                .run(
                    repo,
                    "git",
                    ["push", "origin", &format!("main:refs/heads/{branch}")],
                )
                .ok();
            assert!(
                out.stderr.contains(&format!("main -> {branch}")),
                "{}",
                out.stderr
            );
            out
        } else {
            env.entire(repo, &["push"]).ok()
        }
    };
    push(&a);
    let remote_before = ref_value(env, &s.path("server.git"), &cp_ref(&shared)).expect("a's ref");
    let before = s.connections();
    let out = push(&b);
    // The recovery's round trips: the push, one fetch of the remote tip, the push of the merge.
    if let Some(n) = before {
        assert_eq!(s.connections(), Some(n + 3), "{kind:?}: {}", s.log());
    }
    assert!(!out.stderr.contains("queued"), "{}", out.stderr);
    let server = s.path("server.git");
    let landed = ref_value(env, &server, &cp_ref(&shared)).expect("ref on the server");
    assert_eq!(Some(landed.clone()), ref_value(env, &b, &cp_ref(&shared)));
    assert!(contains(env, &server, &remote_before, &landed), "forced");
    let spec = |n: usize, f: &str| format!("{}:{n}/{f}", cp_ref(&shared));
    for tag in ["a1", "b1"] {
        let found = (0..2).any(|n| {
            cat(env, &server, &spec(n, "metadata.json"))
                .is_some_and(|m| m.contains(&format!("\"sess-{tag}\"")))
                && cat(env, &server, &spec(n, "full.jsonl"))
                    .is_some_and(|t| t.contains(&format!("of {tag}")))
        });
        assert!(
            found,
            "session {tag} in the merged checkpoint\n{}",
            out.stderr
        );
    }
    let root = cat(env, &server, &format!("{}:metadata.json", cp_ref(&shared))).expect("root");
    assert!(root.contains("\"/1/full.jsonl\""), "{root}");
    assert!(queued(env, &b).is_empty(), "{:?}", queued(env, &b));
    env.git(&server, &["fsck", "--no-progress", "--no-dangling"]);
}

#[test]
fn a_checkpoint_ref_both_clones_wrote_is_merged_by_session_over_file() {
    a_checkpoint_ref_both_clones_wrote_is_merged_by_session(Kind::File, false);
    a_checkpoint_ref_both_clones_wrote_is_merged_by_session(Kind::File, true);
}

#[test]
fn a_checkpoint_ref_both_clones_wrote_is_merged_by_session_over_sshd_and_git_daemon() {
    a_checkpoint_ref_both_clones_wrote_is_merged_by_session(Kind::Sshd, true);
    a_checkpoint_ref_both_clones_wrote_is_merged_by_session(Kind::Daemon, true);
}

/// With v2 on, a fetch through `entire::` brings `v2/main` in the same extra round trip as the referenced
/// checkpoints.
#[test]
fn fetch_pulls_along_v2_main_in_the_same_round_trip() {
    let s = Served::new(Kind::Daemon);
    let env = &s.env;
    let server = s.path("server.git");
    let (a, b) = two_clones(&s, V2_MIRROR);
    let id = write(env, &a, "a1", None);
    crate::fixtures::commit_linking(env, &a, "work", &[&id]);
    env.run(&a, "git", ["push", "origin", "main"]).ok();
    let url = format!("entire::{}", s.url("server.git"));
    env.git(&b, &["remote", "set-url", "origin", &url]);
    assert_eq!(ref_value(env, &b, MAIN), None);
    let before = s.fetch_connections().expect("daemon log");
    env.git(&b, &["fetch", "-q", "origin"]);
    assert!(
        ref_value(env, &b, &cp_ref(&id)).is_some(),
        "checkpoint pulled along"
    );
    assert_eq!(
        ref_value(env, &b, MAIN),
        ref_value(env, &server, MAIN),
        "v2/main pulled along"
    );
    // list, the code fetch, and ONE fetch for the checkpoint and v2/main.
    assert_eq!(s.fetch_connections(), Some(before + 3), "{}", s.log());
}

/// kill -9 of the whole push while the recovery's second push waits in the server's hook: the next push
/// converges (the merged local refs go out fast-forward; nothing is lost, nothing forced).
#[test]
fn a_recovery_killed_mid_push_converges_on_the_next_push() {
    use std::os::unix::process::CommandExt;
    let s = Served::new(Kind::File);
    let env = &s.env;
    let server = s.path("server.git");
    let (a, b) = two_clones(&s, V2_MIRROR);
    let mut ids = vec![write(env, &a, "a1", None), write(env, &b, "b1", None)];
    env.git(&a, &["commit", "-q", "--allow-empty", "-m", "a"]);
    env.run(&a, "git", ["push", "origin", "main"]).ok();
    let marker = env.path().join("retry-push-seen");
    // The recovery's retry carries only shared refs: hold it there.
    s.hook(
        "server.git",
        "pre-receive",
        &format!(
            "grep -q refs/heads/b && exit 0; touch {}; sleep 60",
            marker.display()
        ),
    );
    env.git(&b, &["commit", "-q", "--allow-empty", "-m", "b"]);
    let mut child = env
        .cmd("git", &b)
        .args(["push", "origin", "main:refs/heads/b"])
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("push starts");
    let waited = std::time::Instant::now();
    while !marker.exists() && waited.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(marker.exists(), "the recovery reached its second push");
    let group = format!("-{}", child.id());
    std::process::Command::new("kill")
        .args(["-KILL", "--", &group])
        .status()
        .expect("kill");
    let _ = child.wait();
    std::fs::remove_file(server.join("hooks/pre-receive")).expect("hook removed");
    ids.push(write(env, &b, "b2", None));
    let out = env.entire(&b, &["push"]).ok();
    assert!(!out.stderr.contains("not pushed"), "{}", out.stderr);
    let lost = missing(&s, &[&a, &b], &ids, &ids[0], &[]);
    assert!(
        lost.is_empty(),
        "missing after the next push: {lost:?}\n{}",
        out.stderr
    );
    for r in [LEGACY, MAIN, CURRENT] {
        assert_eq!(
            ref_value(env, &server, r),
            ref_value(env, &b, r),
            "{r} converged"
        );
    }
    env.git(&server, &["fsck", "--no-progress", "--no-dangling"]);
}
