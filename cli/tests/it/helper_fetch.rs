//! Fetching through `git-remote-entire`: fetch and clone behave like the plain URL, and checkpoints named by
//! the new commits' trailers come along in one extra round trip (`entire.fetchCheckpoints`).

use crate::fixtures::{commit_linking, cp_ref, hex_id, ref_value, refs, write_checkpoint};
use crate::transports::{Kind, Served};

const CP: &str = "refs/entire/checkpoints/";

/// A server holding `n` checkpoints, the first `linked` of them named by trailers of one commit each.
fn server_with_checkpoints(kind: Kind, n: u32, linked: u32) -> (Served, Vec<String>) {
    let s = Served::new(kind);
    let env = &s.env;
    let seed = env.path().join("seed");
    let ids: Vec<String> = (1..=n).map(hex_id).collect();
    for id in &ids {
        write_checkpoint(env, &seed, id, None);
    }
    for id in ids.iter().take(linked as usize) {
        commit_linking(env, &seed, &format!("work for {id}"), &[id]);
    }
    let server = s.path("server.git");
    env.git(
        &seed,
        &[
            "push",
            "-q",
            server.to_str().expect("utf-8"),
            "main",
            &format!("{CP}*:{CP}*"),
        ],
    );
    (s, ids)
}

fn clone_pulls_along_referenced_checkpoints(kind: Kind) {
    let (s, ids) = server_with_checkpoints(kind, 4, 2);
    let env = &s.env;
    let url = s.url("server.git");
    let out = env
        .run(
            env.path(),
            "git",
            ["clone", &format!("entire::{url}"), "local"],
        )
        .ok();
    let local = env.path().join("local");
    let got: Vec<String> = refs(env, &local, CP).into_iter().map(|(n, _)| n).collect();
    let mut want = vec![cp_ref(&ids[0]), cp_ref(&ids[1])];
    want.sort();
    assert_eq!(got, want, "only the linked checkpoints: {}", out.stderr);
    assert!(
        out.stderr.contains("entire: fetched 2 checkpoint(s)"),
        "{}",
        out.stderr
    );
    // A later fetch brings new commits and exactly their checkpoints.
    let seed = env.path().join("seed");
    commit_linking(env, &seed, "more", &[&ids[2], "0123456789ab"]);
    s.push_plain(&seed, &["main"]);
    env.git(&local, &["fetch", "-q"]);
    assert!(
        ref_value(env, &local, &cp_ref(&ids[2])).is_some(),
        "pulled along on fetch"
    );
    assert!(
        ref_value(env, &local, &cp_ref(&ids[3])).is_none(),
        "unlinked stays remote"
    );
}

#[test]
fn clone_and_fetch_pull_along_over_file() {
    clone_pulls_along_referenced_checkpoints(Kind::File);
}

#[test]
fn clone_and_fetch_pull_along_over_http() {
    clone_pulls_along_referenced_checkpoints(Kind::Http);
}

#[test]
fn clone_and_fetch_pull_along_over_ssh() {
    clone_pulls_along_referenced_checkpoints(Kind::Ssh);
}

#[test]
fn pull_along_is_one_extra_round_trip() {
    let (s, _) = server_with_checkpoints(Kind::Daemon, 30, 25);
    let env = &s.env;
    let url = s.url("server.git");
    let before = s.fetch_connections().expect("daemon log");
    env.git(
        env.path(),
        &["clone", "-q", &format!("entire::{url}"), "local"],
    );
    let local = env.path().join("local");
    assert_eq!(refs(env, &local, CP).len(), 25);
    // The clone's own connection (ls-refs and fetch, as with the plain URL) and ONE fetch for all 25
    // checkpoints.
    assert_eq!(s.fetch_connections(), Some(before + 2), "{}", s.log());
}

#[test]
fn fetch_checkpoints_policies_and_limit() {
    let (s, ids) = server_with_checkpoints(Kind::File, 5, 4);
    let env = &s.env;
    let url = format!("entire::{}", s.url("server.git"));
    let count = |name: &str| refs(env, &env.path().join(name), CP).len();
    // none
    env.git(
        env.path(),
        &[
            "-c",
            "entire.fetchCheckpoints=none",
            "clone",
            "-q",
            &url,
            "none",
        ],
    );
    assert_eq!(count("none"), 0);
    // all (not only the linked ones)
    env.git(
        env.path(),
        &[
            "-c",
            "entire.fetchCheckpoints=all",
            "clone",
            "-q",
            &url,
            "all",
        ],
    );
    assert_eq!(count("all"), 5);
    // referenced with a limit: the newest commits' checkpoints win
    env.git(
        env.path(),
        &[
            "-c",
            "entire.fetchCheckpointsLimit=2",
            "clone",
            "-q",
            &url,
            "limited",
        ],
    );
    let got: Vec<String> = refs(env, &env.path().join("limited"), CP)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut want = vec![cp_ref(&ids[3]), cp_ref(&ids[2])];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn shallow_clone_and_ls_remote_outside_a_repository() {
    for kind in [Kind::File, Kind::Http, Kind::Ssh] {
        let (s, ids) = server_with_checkpoints(kind, 3, 3);
        let env = &s.env;
        let url = format!("entire::{}", s.url("server.git"));
        env.git(
            env.path(),
            &["clone", "-q", "--depth", "1", &url, "shallow"],
        );
        let shallow = env.path().join("shallow");
        assert_eq!(
            env.git(&shallow, &["rev-list", "--count", "HEAD"]),
            "1",
            "{kind:?}"
        );
        assert_eq!(
            env.git(&shallow, &["rev-parse", "--is-shallow-repository"]),
            "true"
        );
        assert_eq!(
            refs(env, &shallow, CP)
                .into_iter()
                .map(|(n, _)| n)
                .collect::<Vec<_>>(),
            vec![cp_ref(&ids[2])],
            "{kind:?}: only the fetched commit's checkpoint"
        );
        let outside = env.path().join("nowhere");
        std::fs::create_dir_all(&outside).expect("dir");
        let listed = env.git(&outside, &["ls-remote", &url]);
        assert!(listed.contains("\trefs/heads/main"), "{kind:?}: {listed}");
        assert!(listed.contains("\tHEAD"), "{kind:?}: {listed}");
    }
}

#[test]
fn works_from_bare_repos_linked_worktrees_and_subdirectories() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let url = s.url("server.git");
    let server = s.path("server.git");
    let local = s.clone_local("local");
    // linked worktree: the queue lives in the common dir, shared by all worktrees
    env.git(&local, &["worktree", "add", "-q", "-b", "wt", "../wt"]);
    let wt = env.path().join("wt");
    let a = hex_id(1);
    let a_value = crate::fixtures::checkpoint(env, &wt, &a);
    env.git(
        &wt,
        &["commit", "-q", "--allow-empty", "-m", "from worktree"],
    );
    env.git(&wt, &["push", "-q", "origin", "HEAD:refs/heads/wt"]);
    assert_eq!(ref_value(env, &server, &cp_ref(&a)), Some(a_value));
    assert_eq!(
        ref_value(env, &server, "refs/heads/wt"),
        ref_value(env, &wt, "refs/heads/wt")
    );
    // subdirectory
    let sub = local.join("deep/dir");
    std::fs::create_dir_all(&sub).expect("subdir");
    let b = hex_id(2);
    let b_value = crate::fixtures::checkpoint(env, &local, &b);
    env.git(&sub, &["push", "-q", "origin", "HEAD:refs/heads/from-sub"]);
    assert_eq!(ref_value(env, &server, &cp_ref(&b)), Some(b_value));
    // bare repository
    env.git(env.path(), &["clone", "-q", "--bare", &url, "bare.git"]);
    let bare = env.path().join("bare.git");
    let c = hex_id(3);
    let c_value = crate::fixtures::checkpoint(env, &bare, &c);
    env.git(
        &bare,
        &[
            "push",
            "-q",
            &format!("entire::{url}"),
            "main:refs/heads/from-bare",
        ],
    );
    assert_eq!(ref_value(env, &server, &cp_ref(&c)), Some(c_value));
    assert!(crate::fixtures::queued(env, &bare).is_empty());
}

#[test]
fn partial_clone_passes_the_filter_through() {
    let (s, _) = server_with_checkpoints(Kind::File, 2, 2);
    let env = &s.env;
    let seed = env.path().join("seed");
    std::fs::write(
        seed.join("big.txt"),
        "content that a blobless clone leaves on the server\n",
    )
    .expect("file");
    env.git(&seed, &["add", "big.txt"]);
    env.git(&seed, &["commit", "-q", "-m", "blob"]);
    std::fs::remove_file(seed.join("big.txt")).expect("rm");
    env.git(&seed, &["commit", "-q", "-am", "gone again"]);
    s.push_plain(&seed, &["main"]);
    env.git(
        &s.path("server.git"),
        &["config", "uploadpack.allowFilter", "true"],
    );
    let url = format!("entire::{}", s.url("server.git"));
    env.git(
        env.path(),
        &["clone", "-q", "--filter=blob:none", &url, "partial"],
    );
    let partial = env.path().join("partial");
    let missing = env.git(
        &partial,
        &["rev-list", "--objects", "--missing=print", "--all"],
    );
    assert!(
        missing.lines().any(|l| l.starts_with('?')),
        "blobs were filtered out"
    );
    assert_eq!(
        env.git(&partial, &["config", "remote.origin.promisor"]),
        "true"
    );
    let sections = env.git(&partial, &["config", "--local", "--list"]);
    assert!(
        !sections.contains("remote.file:"),
        "no promisor section for the bare URL:\n{sections}"
    );
    // The promisor remote goes through the helper for the missing blob, lazily.
    env.git(&partial, &["show", "HEAD~1:big.txt"]);
}

/// The project's committed `.entire/settings.json` turns v2 on. A clone through `entire::` pulls checkpoints
/// along before its worktree is checked out, so the settings come from the fetched commits: `v2/main` comes in
/// the same round trip as the referenced checkpoints.
#[test]
fn clone_pulls_along_v2_main_when_the_committed_settings_enable_v2() {
    use crate::v2_write::{claude_session, claude_transcript, settings};
    const V2: &str = "refs/entire/checkpoints/v2/main";
    let s = Served::new(Kind::Daemon);
    let env = &s.env;
    let writer = s.clone_local("writer");
    settings(
        &writer,
        r#"{"strategy_options": {"checkpoint_store": "refs-v1", "checkpoints_v2": true}}"#,
    );
    env.git(&writer, &["add", ".entire/settings.json"]);
    env.git(&writer, &["commit", "-q", "-m", "entire settings"]);
    let session = claude_session(env, "s1", "sess-1", &claude_transcript("s1", 1));
    let id = crate::fixtures::entire_write(env, &writer, &session);
    commit_linking(env, &writer, "work", &[&id]);
    env.run(&writer, "git", ["push", "origin", "main"]).ok();
    let server = s.path("server.git");
    assert!(ref_value(env, &server, V2).is_some(), "v2/main was pushed");
    let before = s.fetch_connections().expect("daemon log");
    let url = format!("entire::{}", s.url("server.git"));
    env.git(env.path(), &["clone", "-q", &url, "local"]);
    let local = env.path().join("local");
    assert!(
        ref_value(env, &local, &cp_ref(&id)).is_some(),
        "checkpoint pulled along"
    );
    assert_eq!(
        ref_value(env, &local, V2),
        ref_value(env, &server, V2),
        "v2/main pulled along"
    );
    // The clone's own connection and ONE fetch for the checkpoint and v2/main.
    assert_eq!(s.fetch_connections(), Some(before + 2), "{}", s.log());
}
