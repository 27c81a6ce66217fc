//! Rotation meets divergence (issue #13): both clones cross the generation threshold before pushing. The
//! remote must end with every checkpoint in exactly one generation (an archive or `current`), no archive
//! overwritten (the first published value stays an ancestor), nothing forced, `git fsck` clean.

use std::path::Path;

use crate::env::TestEnv;
use crate::fixtures::{path_str, refs};
use crate::transports::{Kind, Served};
use crate::v2_write::{claude_session, claude_transcript, settings};

const V2_PRIMARY: &str = r#"{"strategy_options": {"checkpoints_version": 2}}"#;
const FULL: &str = "refs/entire/checkpoints/v2/full/";
const MAIN: &str = "refs/entire/checkpoints/v2/main";

fn write(env: &TestEnv, repo: &Path, tag: &str) -> String {
    let s = claude_session(env, tag, &format!("sess-{tag}"), &claude_transcript(tag, 1));
    env.entire(repo, &["write", path_str(&s)])
        .ok()
        .trimmed()
        .to_string()
}

fn path_of(id: &str) -> String {
    format!("{}/{}", &id[..2], &id[2..])
}

/// For each checkpoint of `ids`: the `/full` refs of `repo` that hold it.
fn generations(env: &TestEnv, repo: &Path, ids: &[String]) -> Vec<(String, Vec<String>)> {
    let fulls = refs(env, repo, FULL);
    ids.iter()
        .map(|id| {
            let holders = fulls
                .iter()
                .filter(|(name, _)| {
                    env.git(repo, &["ls-tree", "-r", "--name-only", name])
                        .contains(&path_of(id))
                })
                .map(|(name, _)| name.clone())
                .collect();
            (id.clone(), holders)
        })
        .collect()
}

#[test]
fn both_clones_rotate_before_pushing_and_nothing_is_lost_or_overwritten() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    env.set_env("ENTIRE_TEST_V2_GENERATION_MAX", "3");
    let server = s.path("server.git");
    let a = s.clone_local("a");
    let b = s.clone_local("b");
    settings(&a, V2_PRIMARY);
    settings(&b, V2_PRIMARY);
    let mut ids = Vec::new();
    for i in 1..=4 {
        ids.push(write(env, &a, &format!("a{i}")));
        ids.push(write(env, &b, &format!("b{i}")));
    }
    assert_eq!(refs(env, &a, FULL).len(), 2, "a rotated: archive + current");
    assert_eq!(refs(env, &b, FULL).len(), 2, "b rotated: archive + current");
    env.git(&a, &["commit", "-q", "--allow-empty", "-m", "a"]);
    env.run(&a, "git", ["push", "origin", "main"]).ok();
    let first = refs(env, &server, FULL);
    assert_eq!(first.len(), 2, "a's archive and current landed: {first:?}");
    env.git(&b, &["commit", "-q", "--allow-empty", "-m", "b"]);
    let out_b = env
        .run(&b, "git", ["push", "origin", "main:refs/heads/b"])
        .ok();
    assert!(!out_b.stderr.contains("not pushed"), "{}", out_b.stderr);
    ids.push(write(env, &a, "a5"));
    env.git(&a, &["commit", "-q", "--allow-empty", "-m", "a again"]);
    let out = env.run(&a, "git", ["push", "origin", "main"]).ok();
    assert!(!out.stderr.contains("not pushed"), "{}", out.stderr);
    let why = format!("{}\n{}", out_b.stderr, out.stderr);
    let main_paths = env.git(&server, &["ls-tree", "-r", "--name-only", MAIN]);
    for (id, holders) in generations(env, &server, &ids) {
        assert!(
            main_paths.contains(&path_of(&id)),
            "{id} on v2/main\n{main_paths}\n{why}"
        );
        assert_eq!(
            holders.len(),
            1,
            "{id} in exactly one generation: {holders:?}"
        );
    }
    for (name, old) in first {
        let now = refs(env, &server, &name)
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .expect("still there");
        if !name.ends_with("/current") {
            assert!(
                env.run(&server, "git", ["merge-base", "--is-ancestor", &old, &now])
                    .status
                    == 0,
                "{name} not overwritten"
            );
        }
    }
    env.git(&server, &["fsck", "--no-progress", "--no-dangling"]);
}
