//! Task (subagent) records through the producer API: `write --manifest` task entries, placement per layout
//! (checkpoint root merged by tool-use ID on refs and the legacy branch, under the owning session on v2 `/full`),
//! read-back through `show`, hostile IDs, and tasks another writer put there in upstream's layout.

use std::path::Path;

use crate::env::TestEnv;
use crate::fixtures::path_str;

fn settings(repo: &Path, body: &str) {
    std::fs::create_dir_all(repo.join(".entire")).expect("mkdir");
    std::fs::write(repo.join(".entire/settings.json"), body).expect("settings");
}

/// One task: (tool_use_id, agent_id, task.json body).
type Task<'a> = (&'a str, &'a str, &'a str);
/// One session of a manifest: (session_id, its tasks).
type Session<'a> = (&'a str, &'a [Task<'a>]);

/// A manifest with sessions `(session_id, [(tool_use_id, agent_id, task_json)])`; returns its path.
fn manifest(env: &TestEnv, name: &str, sessions: &[Session]) -> std::path::PathBuf {
    let dir = env.path().join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut items = Vec::new();
    for (sid, tasks) in sessions {
        std::fs::write(
            dir.join(format!("{sid}.meta.json")),
            format!("{{\"session_id\":\"{sid}\"}}"),
        )
        .expect("w");
        std::fs::write(
            dir.join(format!("{sid}.jsonl")),
            format!("{{\"s\":\"{sid}\"}}\n"),
        )
        .expect("w");
        let mut ts = Vec::new();
        for (k, (tool, agent, body)) in tasks.iter().enumerate() {
            let tf = format!("{sid}-{k}.task.json");
            let af = format!("{sid}-{k}.agent.jsonl");
            std::fs::write(dir.join(&tf), body).expect("w");
            std::fs::write(dir.join(&af), format!("{{\"agent\":\"{agent}\"}}\n")).expect("w");
            ts.push(serde_json::json!({"tool_use_id": tool, "agent_id": agent, "task": tf, "transcript": af}));
        }
        items.push(serde_json::json!({"metadata": format!("{sid}.meta.json"), "transcript": format!("{sid}.jsonl"), "tasks": ts}));
    }
    let path = dir.join("manifest.json");
    std::fs::write(&path, serde_json::json!({"sessions": items}).to_string()).expect("w");
    path
}

#[test]
fn tasks_land_at_the_checkpoint_root_merged_by_tool_use_id() {
    let env = TestEnv::new();
    for (mode, body) in [
        (
            "refs",
            r#"{"strategy_options": {"checkpoint_store": "refs-v1"}}"#,
        ),
        ("branch", "{}"),
    ] {
        let repo = env.repo(&format!("r-{mode}"));
        settings(&repo, body);
        let m = manifest(
            &env,
            &format!("m1-{mode}"),
            &[
                ("sess-a", &[("toolu_01A", "a1", "{\"n\":1}\n")]),
                ("sess-b", &[("toolu_02B", "b1", "{\"n\":2}\n")]),
            ],
        );
        let id = env
            .entire(&repo, &["write", "--manifest", path_str(&m)])
            .ok()
            .trimmed()
            .to_string();
        for (path, want) in [
            ("tasks/toolu_01A/task.json", "{\"n\":1}\n"),
            ("tasks/toolu_01A/agent-a1.jsonl", "{\"agent\":\"a1\"}\n"),
            ("tasks/toolu_02B/task.json", "{\"n\":2}\n"),
        ] {
            let shown = env.entire(&repo, &["show", &id, path]).ok();
            assert_eq!(shown.stdout, want, "{mode}: {path}");
        }
        // A rewrite of one task replaces its subtree; the other task stays.
        let m2 = manifest(
            &env,
            &format!("m2-{mode}"),
            &[("sess-a", &[("toolu_01A", "a2", "{\"n\":3}\n")])],
        );
        env.entire(&repo, &["write", "--id", &id, "--manifest", path_str(&m2)])
            .ok();
        assert_eq!(
            env.entire(&repo, &["show", &id, "tasks/toolu_01A/task.json"])
                .ok()
                .stdout,
            "{\"n\":3}\n"
        );
        assert_eq!(
            env.entire(&repo, &["show", &id, "tasks/toolu_01A/agent-a1.jsonl"])
                .status,
            1,
            "{mode}: old agent file replaced"
        );
        assert_eq!(
            env.entire(&repo, &["show", &id, "tasks/toolu_02B/task.json"])
                .ok()
                .stdout,
            "{\"n\":2}\n"
        );
        assert_eq!(env.entire(&repo, &["fsck"]).status, 0, "{mode}: fsck clean");
        let doc: serde_json::Value =
            serde_json::from_str(&env.entire(&repo, &["show", "--json", &id]).ok().stdout)
                .expect("json");
        assert_eq!(
            doc["tasks"],
            serde_json::json!(["toolu_01A", "toolu_02B"]),
            "{mode}: --json lists the tasks"
        );
    }
}

#[test]
fn on_v2_tasks_go_under_the_owning_session() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(
        &repo,
        r#"{"strategy_options": {"checkpoint_store": "refs-v1", "checkpoints_v2": true}}"#,
    );
    let m = manifest(
        &env,
        "m",
        &[
            ("sess-a", &[]),
            ("sess-b", &[("toolu_02B", "b1", "{\"n\":2}\n")]),
        ],
    );
    let id = env
        .entire(&repo, &["write", "--manifest", path_str(&m)])
        .ok()
        .trimmed()
        .to_string();
    let full = env.git(
        &repo,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "refs/entire/checkpoints/v2/full/current",
        ],
    );
    let slot_b = if full.contains("/1/tasks/toolu_02B/task.json") {
        1
    } else {
        0
    };
    let meta = env
        .entire(&repo, &["show", &id, &format!("{slot_b}/metadata.json")])
        .ok()
        .stdout;
    assert!(
        meta.contains("sess-b"),
        "the task sits under sess-b's slot:\n{full}\n{meta}"
    );
    assert!(
        full.contains(&format!("/{slot_b}/tasks/toolu_02B/agent-b1.jsonl")),
        "{full}"
    );
}

#[test]
fn hostile_task_ids_and_duplicates_are_refused_before_anything_is_written() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(
        &repo,
        r#"{"strategy_options": {"checkpoint_store": "refs-v1"}}"#,
    );
    let before = env.git(&repo, &["for-each-ref"]);
    let cases: [(&str, &[Session], &str); 3] = [
        ("bad-tool", &[("s1", &[("../x", "a", "{}")])], "tool use ID"),
        (
            "bad-agent",
            &[("s1", &[("toolu_1", "a/b", "{}")])],
            "agent ID",
        ),
        (
            "dup",
            &[
                ("s1", &[("toolu_1", "a", "{}")]),
                ("s2", &[("toolu_1", "b", "{}")]),
            ],
            "two sessions",
        ),
    ];
    for (name, sessions, needle) in cases {
        let m = manifest(&env, name, sessions);
        let run = env
            .entire(&repo, &["write", "--manifest", path_str(&m)])
            .code(1);
        assert!(run.stderr.contains(needle), "{name}: {}", run.stderr);
    }
    assert_eq!(env.git(&repo, &["for-each-ref"]), before, "nothing written");
}

#[test]
fn a_task_written_by_another_writer_in_upstreams_layout_is_read_and_kept() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(
        &repo,
        r#"{"strategy_options": {"checkpoint_store": "refs-v1"}}"#,
    );
    let m = manifest(&env, "m", &[("sess-a", &[])]);
    let id = env
        .entire(&repo, &["write", "--manifest", path_str(&m)])
        .ok()
        .trimmed()
        .to_string();
    let refname = format!("refs/entire/checkpoints/{}/{id}", &id[id.len() - 2..]);
    // Upstream's layout, written with plumbing: tasks/<tool-use-id>/{task.json, agent-<id>.jsonl}.
    let task = env.git_stdin(
        &repo,
        &["hash-object", "-w", "--stdin"],
        "{\"upstream\":true}\n",
    );
    let agent = env.git_stdin(&repo, &["hash-object", "-w", "--stdin"], "{\"agent\":1}\n");
    let t = env.git_stdin(
        &repo,
        &["mktree"],
        &format!("100644 blob {agent}\tagent-x9.jsonl\n100644 blob {task}\ttask.json\n"),
    );
    let tasks = env.git_stdin(&repo, &["mktree"], &format!("040000 tree {t}\ttoolu_UP\n"));
    replace_root_tasks(&env, &repo, &refname, &id, &tasks);
    assert_eq!(
        env.entire(&repo, &["show", &id, "tasks/toolu_UP/task.json"])
            .ok()
            .stdout,
        "{\"upstream\":true}\n"
    );
    let m2 = manifest(&env, "m2", &[("sess-b", &[("toolu_NEW", "n1", "{}\n")])]);
    env.entire(&repo, &["write", "--id", &id, "--manifest", path_str(&m2)])
        .ok();
    assert_eq!(
        env.entire(&repo, &["show", &id, "tasks/toolu_UP/agent-x9.jsonl"])
            .ok()
            .stdout,
        "{\"agent\":1}\n"
    );
    assert_eq!(
        env.entire(&repo, &["show", &id, "tasks/toolu_NEW/task.json"])
            .ok()
            .stdout,
        "{}\n"
    );
    assert_eq!(env.entire(&repo, &["fsck"]).status, 0);
    // A task directory whose name is not a tool-use ID is flagged by fsck.
    let bad = env.git_stdin(&repo, &["mktree"], &format!("040000 tree {t}\tbad..id\n"));
    replace_root_tasks(&env, &repo, &refname, &id, &bad);
    let run = env.entire(&repo, &["fsck"]).code(1);
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("bad..id"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

/// Commit a new tip of checkpoint ref `refname` whose root `tasks` entry is `tasks`, written with plumbing as
/// another writer (upstream) would.
fn replace_root_tasks(env: &TestEnv, repo: &Path, refname: &str, id: &str, tasks: &str) {
    let listing: Vec<String> = env
        .git(repo, &["ls-tree", refname])
        .lines()
        .filter(|l| !l.ends_with("\ttasks"))
        .map(str::to_string)
        .collect();
    let listing = format!("{}\n040000 tree {tasks}\ttasks\n", listing.join("\n"));
    let root = env.git_stdin(repo, &["mktree"], &listing);
    let old = env.git(repo, &["rev-parse", refname]);
    let msg = format!("Checkpoint: {id}");
    let c = env.git(repo, &["commit-tree", &root, "-p", &old, "-m", &msg]);
    env.git(repo, &["update-ref", refname, &c, &old]);
}

#[test]
fn large_agent_transcripts_are_chunked_like_full_jsonl_and_read_back_whole() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    settings(
        &repo,
        r#"{"strategy_options": {"checkpoint_store": "refs-v1", "checkpoints_v2": true}}"#,
    );
    let dir = env.path().join("big");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let line = format!("{{\"agent\":\"{}\"}}\n", "x".repeat(1000));
    let big = line.repeat((51 << 20) / line.len() + 1);
    std::fs::write(dir.join("agent.jsonl"), &big).expect("write");
    std::fs::write(dir.join("task.json"), "{}\n").expect("write");
    std::fs::write(dir.join("meta.json"), r#"{"session_id":"s-big"}"#).expect("write");
    std::fs::write(dir.join("t.jsonl"), "{}\n").expect("write");
    let m = serde_json::json!({"sessions": [{"metadata": "meta.json", "transcript": "t.jsonl", "tasks": [
        {"tool_use_id": "toolu_BIG", "agent_id": "big", "task": "task.json", "transcript": "agent.jsonl"}]}]});
    std::fs::write(dir.join("manifest.json"), m.to_string()).expect("write");
    let id = env
        .entire(
            &repo,
            &["write", "--manifest", path_str(&dir.join("manifest.json"))],
        )
        .ok()
        .trimmed()
        .to_string();
    let refname = format!("refs/entire/checkpoints/{}/{id}", &id[id.len() - 2..]);
    let files = env.git(&repo, &["ls-tree", "-r", "--name-only", &refname]);
    assert!(
        files.contains("tasks/toolu_BIG/agent-big.jsonl.001"),
        "{files}"
    );
    let shown = env
        .entire(&repo, &["show", &id, "tasks/toolu_BIG/agent-big.jsonl"])
        .ok();
    assert!(
        shown.stdout_bytes == big.as_bytes(),
        "reassembled byte for byte"
    );
    let full = env.git(
        &repo,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "refs/entire/checkpoints/v2/full/current",
        ],
    );
    assert!(
        full.contains("/0/tasks/toolu_BIG/agent-big.jsonl.001"),
        "chunked on v2 /full too:\n{full}"
    );
}
