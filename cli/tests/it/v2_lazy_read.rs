//! Lazy reads of v2 raw transcripts (issue #13): a clone that has only what a plain `git clone` brings (or
//! `v2/main` without the `/full` generations) shows the raw transcript of a checkpoint held by the remote's
//! `/full/current` or by one of its archives, byte-identical, in ONE fetch (one round trip) — counted as
//! `git fetch` children of the command (trace2) and, where the server logs them, as upload-pack connections.
//! A diverged local generation is never overwritten; a checkpoint the remote lacks is still "not found".

use std::path::{Path, PathBuf};

use crate::env::{Run, TestEnv};
use crate::fixtures::{hex_id, path_str, ref_value};
use crate::transports::{Kind, Served};
use crate::v2_write::{claude_session, claude_transcript, settings};

const V2_PRIMARY: &str = r#"{"strategy_options": {"checkpoints_version": 2}}"#;
const MAIN: &str = "refs/entire/checkpoints/v2/main";
const CURRENT: &str = "refs/entire/checkpoints/v2/full/current";
const LIMIT: usize = 2;

fn archive(n: u32) -> String {
    format!("refs/entire/checkpoints/v2/full/{n:013}")
}

/// A served remote whose v2 layout holds five checkpoints: archive 1 holds 0–1, archive 2 holds 2–3,
/// `/full/current` holds 4. Returns the IDs and their original raw transcripts.
fn served(kind: Kind) -> (Served, Vec<(String, String)>) {
    let s = Served::new(kind);
    let env = &s.env;
    env.set_env("ENTIRE_TEST_V2_GENERATION_MAX", &LIMIT.to_string());
    let a = s.clone_local("a");
    settings(&a, V2_PRIMARY);
    let mut cps = Vec::new();
    for n in 0..5 {
        let tag = format!("t{n}");
        let text = claude_transcript(&tag, 2 + n as usize);
        let sess = claude_session(env, &tag, &format!("sess-{tag}"), &text);
        let id = hex_id(n);
        env.entire(&a, &["write", "--id", &id, path_str(&sess)])
            .ok();
        cps.push((id, text));
    }
    env.entire(&a, &["push"]).ok();
    let server = s.path("server.git");
    for r in [
        MAIN.to_string(),
        CURRENT.to_string(),
        archive(1),
        archive(2),
    ] {
        assert_eq!(
            ref_value(env, &server, &r),
            ref_value(env, &a, &r),
            "{r} published"
        );
    }
    (s, cps)
}

/// A plain clone with the v2 settings (not committed in the served repository, so written here).
fn plain_clone(s: &Served, name: &str) -> PathBuf {
    let dir = s.clone_local(name);
    settings(&dir, V2_PRIMARY);
    assert_eq!(ref_value(&s.env, &dir, MAIN), None);
    dir
}

/// `git entire show args…`, with the number of `git fetch` children it ran and, where the server logs them,
/// of upload-pack connections it made.
fn show(s: &Served, repo: &Path, args: &[&str]) -> (Run, usize, Option<usize>) {
    let trace = s.env.path().join("trace2.json");
    let _ = std::fs::remove_file(&trace);
    let before = s.fetch_connections();
    let out = s
        .env
        .cmd("git", repo)
        .env("GIT_TRACE2_EVENT", &trace)
        .arg("entire")
        .arg("show")
        .args(args)
        .output()
        .expect("git entire starts");
    let fetches = std::fs::read_to_string(&trace)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(r#""event":"start""#) && l.contains(r#","fetch","#))
        .count();
    let connections = s.fetch_connections().zip(before).map(|(a, b)| a - b);
    (Run::from_output(out), fetches, connections)
}

fn scratch_refs(env: &TestEnv, repo: &Path) -> String {
    env.git(repo, &["for-each-ref", "refs/entire-fetch-tmp/"])
}

/// Server connections (upload-pack requests) of ONE plain `git fetch` of `v2/main` and the generations: smart
/// HTTP is stateless, so one round trip of git itself is several requests there.
fn plain_fetch_connections(s: &Served) -> usize {
    let e = s.clone_local("baseline");
    let before = s.fetch_connections().unwrap_or(0);
    s.env.git(
        &e,
        &[
            "fetch",
            "-q",
            "origin",
            &format!("{MAIN}:refs/b/main"),
            "+refs/entire/checkpoints/v2/full/*:refs/b/full/*",
        ],
    );
    s.fetch_connections().unwrap_or(1) - before
}

fn shows_current_and_archived_raw_transcripts(kind: Kind) {
    let (s, cps) = served(kind);
    let env = &s.env;
    let server = s.path("server.git");
    let one = plain_fetch_connections(&s);
    // A plain clone: the checkpoint in /full/current, metadata and transcript in one fetch.
    let b = plain_clone(&s, "b");
    let (out, fetches, conns) = show(&s, &b, &[&cps[4].0, "0/raw_transcript"]);
    assert_eq!(out.ok().stdout, cps[4].1);
    assert_eq!((fetches, conns.unwrap_or(one)), (1, one), "one round trip");
    // Every generation is now local; an archived checkpoint costs nothing more.
    for r in [
        MAIN.to_string(),
        CURRENT.to_string(),
        archive(1),
        archive(2),
    ] {
        assert_eq!(ref_value(env, &b, &r), ref_value(env, &server, &r), "{r}");
    }
    let (out, fetches, _) = show(&s, &b, &[&cps[1].0, "0/full.jsonl"]);
    assert_eq!((out.ok().stdout, fetches), (cps[1].1.clone(), 0));

    // Another plain clone asks for an archived checkpoint first.
    let c = plain_clone(&s, "c");
    let (out, fetches, conns) = show(&s, &c, &[&cps[0].0, "0/raw_transcript"]);
    assert_eq!(out.ok().stdout, cps[0].1);
    assert_eq!((fetches, conns.unwrap_or(one)), (1, one), "one round trip");
    assert_eq!(scratch_refs(env, &c), "", "scratch refs removed");

    // A clone with v2/main only: the generations alone, still one fetch.
    let d = plain_clone(&s, "d");
    env.git(&d, &["fetch", "-q", "origin", &format!("{MAIN}:{MAIN}")]);
    let (out, fetches, conns) = show(&s, &d, &[&cps[2].0, "0/raw_transcript"]);
    assert_eq!(out.ok().stdout, cps[2].1);
    assert_eq!((fetches, conns.unwrap_or(one)), (1, one), "one round trip");
    assert_eq!(
        ref_value(env, &d, &archive(2)),
        ref_value(env, &server, &archive(2))
    );
}

#[test]
fn raw_transcripts_are_fetched_in_one_round_trip_over_file() {
    shows_current_and_archived_raw_transcripts(Kind::File);
}

#[test]
fn raw_transcripts_are_fetched_in_one_round_trip_over_git_daemon() {
    shows_current_and_archived_raw_transcripts(Kind::Daemon);
}

#[test]
fn raw_transcripts_are_fetched_in_one_round_trip_over_http() {
    shows_current_and_archived_raw_transcripts(Kind::Http);
}

/// A local `/full/current` that diverged from the remote's is read around, never overwritten.
#[test]
fn a_diverged_local_generation_is_kept() {
    let (s, cps) = served(Kind::Daemon);
    let env = &s.env;
    let d = plain_clone(&s, "d");
    env.git(&d, &["fetch", "-q", "origin", &format!("{MAIN}:{MAIN}")]);
    let tree = env.git(&d, &["mktree"]);
    let own = env.git(&d, &["commit-tree", "-m", "Start generation", &tree]);
    env.git(&d, &["update-ref", CURRENT, &own, ""]);
    let (out, fetches, _) = show(&s, &d, &[&cps[4].0, "0/raw_transcript"]);
    assert_eq!((out.ok().stdout, fetches), (cps[4].1.clone(), 1));
    assert_eq!(ref_value(env, &d, CURRENT).as_deref(), Some(own.as_str()));
    assert_eq!(scratch_refs(env, &d), "", "scratch refs removed");
}

/// A checkpoint the remote does not have: exit 1, a message naming it and where it was looked for.
#[test]
fn a_missing_checkpoint_is_still_not_found() {
    for kind in [Kind::File, Kind::Daemon] {
        let (s, _) = served(kind);
        let b = plain_clone(&s, "b");
        let id = hex_id(99);
        let (out, fetches, _) = show(&s, &b, &[&id, "0/raw_transcript"]);
        let out = out.code(1);
        assert_eq!(fetches, 1);
        assert!(
            out.stderr.contains(&format!(
                "checkpoint {id} not found locally or on the remote"
            )),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(MAIN), "{}", out.stderr);
        assert_eq!(scratch_refs(&s.env, &b), "");
    }
}

/// The same read on a reftable clone: the scratch refs, the adopted generations and their removal go through
/// git's reftable backend; a metadata read on a plain clone fetches `v2/main` alone.
#[test]
fn reads_on_a_reftable_clone_and_metadata_reads_fetch_v2_main() {
    let (s, cps) = served(Kind::File);
    let env = &s.env;
    let url = s.url("server.git");
    env.git(
        env.path(),
        &["clone", "-q", "--ref-format=reftable", &url, "rt"],
    );
    let rt = env.path().join("rt");
    settings(&rt, V2_PRIMARY);
    let (out, fetches, _) = show(&s, &rt, &[&cps[1].0, "0/raw_transcript"]);
    assert_eq!((out.ok().stdout, fetches), (cps[1].1.clone(), 1));
    let server = s.path("server.git");
    assert_eq!(
        ref_value(env, &rt, &archive(1)),
        ref_value(env, &server, &archive(1))
    );
    assert_eq!(scratch_refs(env, &rt), "");

    let m = plain_clone(&s, "m");
    let (out, fetches, _) = show(&s, &m, &[&cps[3].0]);
    let out = out.ok();
    assert!(out.stdout.contains(&cps[3].0), "{}", out.stdout);
    assert_eq!(fetches, 1);
    assert_eq!(ref_value(env, &m, MAIN), ref_value(env, &server, MAIN));
    assert_eq!(ref_value(env, &m, CURRENT), None, "metadata needs no /full");
}
