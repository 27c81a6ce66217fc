//! `git entire push | fetch | list | install` and the lazy fetch of `git entire show`.

use crate::fixtures::{
    checkpoint, commit_linking, cp_ref, hex_id, queued, ref_value, refs, write_checkpoint,
};
use crate::transports::{Kind, Served};

const CP: &str = "refs/entire/checkpoints/";

#[test]
fn entire_push_flushes_when_git_has_nothing_to_push() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let server = s.path("server.git");
    let local = s.clone_local("local");
    let id = hex_id(1);
    let value = checkpoint(env, &local, &id);
    // git finds main up to date and never calls the helper's push: the checkpoint stays queued…
    let out = env.run(&local, "git", ["push", "origin", "main"]).ok();
    assert!(
        out.stderr.contains("Everything up-to-date"),
        "{}",
        out.stderr
    );
    assert_eq!(ref_value(env, &server, &cp_ref(&id)), None);
    assert_eq!(queued(env, &local), vec![cp_ref(&id)]);
    // …until `git entire push` flushes it, with the same accounting.
    let out = env.entire(&local, &["push"]).ok();
    assert!(
        out.stderr.contains("pushed 1 checkpoint(s) to origin"),
        "{}",
        out.stderr
    );
    assert_eq!(ref_value(env, &server, &cp_ref(&id)), Some(value));
    assert!(queued(env, &local).is_empty());
    let out = env.entire(&local, &["push"]).ok();
    assert!(out.stderr.contains("nothing to push"), "{}", out.stderr);
}

#[test]
fn entire_push_to_an_unreachable_remote_exits_3_and_keeps_the_queue() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let local = s.clone_local("local");
    checkpoint(env, &local, &hex_id(1));
    env.git(&local, &["remote", "add", "gone", "/nonexistent/repo.git"]);
    let out = env.entire(&local, &["push", "gone"]).code(3);
    assert!(
        out.stderr.contains("could not push to gone"),
        "{}",
        out.stderr
    );
    assert_eq!(queued(env, &local), vec![cp_ref(&hex_id(1))]);
}

#[test]
fn reconcile_pushes_what_each_remote_lacks() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let local = s.clone_local("local");
    let second = s.bare("second.git");
    env.git(&local, &["remote", "add", "second", &s.url("second.git")]);
    let ids: Vec<String> = (1..=3).map(hex_id).collect();
    for id in &ids {
        checkpoint(env, &local, id);
    }
    // Never queued: only --reconcile can find it.
    let unqueued = hex_id(4);
    write_checkpoint(env, &local, &unqueued, None);
    env.entire(&local, &["push"]).ok();
    assert!(
        queued(env, &local).is_empty(),
        "the first remote's push emptied the queue"
    );
    assert_eq!(refs(env, &second, CP).len(), 0);
    let out = env.entire(&local, &["push", "second", "--reconcile"]).ok();
    assert!(
        out.stderr
            .contains("4 local checkpoint(s) missing on second"),
        "{}",
        out.stderr
    );
    assert_eq!(
        refs(env, &second, CP),
        refs(env, &local, CP),
        "the second remote got everything"
    );
    let out = env.entire(&local, &["push", "origin", "--reconcile"]).ok();
    assert!(
        out.stderr
            .contains("1 local checkpoint(s) missing on origin"),
        "{}",
        out.stderr
    );
    assert_eq!(refs(env, &s.path("server.git"), CP), refs(env, &local, CP));
}

#[test]
fn entire_fetch_tells_fetched_missing_and_unreachable_apart() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let seed = env.path().join("seed");
    let id = hex_id(1);
    write_checkpoint(env, &seed, &id, None);
    s.push_plain(&seed, &[&cp_ref(&id)]);
    let local = s.clone_local("local");
    let out = env.entire(&local, &["fetch", &id]).ok();
    assert_eq!(out.trimmed(), format!("fetched {id}"));
    let out = env.entire(&local, &["fetch", &id]).ok();
    assert_eq!(out.trimmed(), format!("present {id}"));
    let absent = hex_id(2);
    let out = env.entire(&local, &["fetch", &absent]).code(1);
    assert!(out.stderr.contains("not on the remote"), "{}", out.stderr);
    env.git(
        &local,
        &["remote", "set-url", "origin", "/nonexistent/repo.git"],
    );
    let out = env.entire(&local, &["fetch", &absent]).code(3);
    assert!(out.stderr.contains("could not fetch"), "{}", out.stderr);
    let out = env.entire(&local, &["fetch", "../etc"]);
    assert_eq!(
        out.status, 1,
        "invalid IDs are refused before anything runs: {}",
        out.stderr
    );
}

#[test]
fn show_lazily_fetches_exactly_one_ref() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let seed = env.path().join("seed");
    // 40 checkpoints on the server; a ULID whose shard has an other-case spelling.
    let ulid = "01M3WE2VX9HQC3NVY9BWYCW6JV";
    for n in 1..=40 {
        write_checkpoint(env, &seed, &hex_id(n), None);
    }
    write_checkpoint(env, &seed, ulid, None);
    s.push_plain(&seed, &[&format!("{CP}*:{CP}*")]);
    env.git(
        env.path(),
        &["clone", "-q", &s.url("server.git"), "elsewhere"],
    );
    let local = env.path().join("elsewhere");
    assert!(refs(env, &local, CP).is_empty());
    let trace = env.path().join("packet-trace");
    let out = env
        .cmd("git", &local)
        .args(["entire", "show", ulid])
        .env("GIT_TRACE_PACKET", &trace)
        .output()
        .expect("git entire runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(ulid));
    assert_eq!(refs(env, &local, CP).len(), 1, "exactly one ref fetched");
    let trace = std::fs::read_to_string(&trace).expect("trace");
    let prefixes: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("fetch> ref-prefix"))
        .map(|l| l.rsplit("ref-prefix ").next().unwrap_or(""))
        .collect();
    assert_eq!(
        prefixes,
        vec![format!("{CP}JV/{ulid}"), format!("{CP}jv/{ulid}")],
        "exact-name listing of both shard spellings"
    );
    assert_eq!(
        trace.matches("fetch> command=ls-refs").count(),
        1,
        "one listing"
    );
    assert_eq!(
        trace.matches("upload-pack> version 2").count(),
        1,
        "one connection:\n{trace}"
    );
    // Not on the remote: exit 1; remote unreachable: exit 3.
    let out = env.entire(&local, &["show", &hex_id(99)]).code(1);
    assert!(
        out.stderr.contains("not found locally or on the remote"),
        "{}",
        out.stderr
    );
    env.git(
        &local,
        &["remote", "set-url", "origin", "/nonexistent/repo.git"],
    );
    env.entire(&local, &["show", &hex_id(98)]).code(3);
    env.entire(&local, &["show", ulid]).ok();
}

#[test]
fn list_fetches_twenty_missing_checkpoints_in_one_fetch() {
    let s = Served::new(Kind::Daemon);
    let env = &s.env;
    let seed = env.path().join("seed");
    let ids: Vec<String> = (1..=20).map(hex_id).collect();
    for (i, id) in ids.iter().enumerate() {
        write_checkpoint(env, &seed, id, None);
        // two checkpoints in one commit (a squash merge), and a dangling ID
        if i % 2 == 1 {
            commit_linking(env, &seed, &format!("pair {i}"), &[&ids[i - 1], id]);
        }
    }
    commit_linking(env, &seed, "dangling", &["0123456789ab"]);
    s.push_plain(&seed, &["main", &format!("{CP}*:{CP}*")]);
    env.git(env.path(), &["clone", "-q", &s.url("server.git"), "local"]);
    let local = env.path().join("local");
    let before = s.fetch_connections().expect("daemon log");
    let out = env.entire(&local, &["list", "--json"]).ok();
    assert_eq!(
        s.fetch_connections(),
        Some(before + 1),
        "one fetch for 20 checkpoints\n{}",
        s.log()
    );
    let rows: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 21);
    assert_eq!(rows[0]["id"], "0123456789ab");
    assert_eq!(rows[0]["status"], "missing");
    assert!(
        rows[1..].iter().all(|r| r["status"] == "fetched"),
        "{rows:?}"
    );
    assert_eq!(refs(env, &local, CP).len(), 20);
    // Everything is local now: no more fetches, and the range syntax is git's.
    let out = env.entire(&local, &["list", "HEAD~2..HEAD"]).ok();
    assert_eq!(
        s.fetch_connections(),
        Some(before + 2),
        "only the dangling ID is looked up again"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[1].contains("\tlocal\tpair 19"), "{}", out.stdout);
    env.entire(&local, &["list", "--no-fetch", "no-such-rev"])
        .code(1);
}

#[test]
fn install_and_undo() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let url = s.url("server.git");
    env.git(env.path(), &["clone", "-q", &url, "local"]);
    let local = env.path().join("local");
    env.entire(&local, &["install"]).ok();
    assert_eq!(
        env.git(&local, &["config", "remote.origin.pushurl"]),
        format!("entire::{url}")
    );
    assert_eq!(env.git(&local, &["config", "remote.origin.url"]), url);
    assert_eq!(
        env.git(&local, &["config", "protocol.entire.allow"]),
        "always"
    );
    // It works: a plain `git push` carries a queued checkpoint.
    let id = hex_id(1);
    let value = checkpoint(env, &local, &id);
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "x"]);
    env.git(&local, &["push", "-q"]);
    assert_eq!(
        ref_value(env, &s.path("server.git"), &cp_ref(&id)),
        Some(value)
    );
    // Idempotent; --fetch also routes fetches; --undo restores the plain remote.
    let again = env.entire(&local, &["install"]).ok();
    assert!(again.stdout.is_empty(), "{}", again.stdout);
    env.entire(&local, &["install", "--fetch"]).ok();
    assert_eq!(
        env.git(&local, &["config", "remote.origin.url"]),
        format!("entire::{url}")
    );
    env.entire(&local, &["install", "--undo"]).ok();
    assert_eq!(env.git(&local, &["config", "remote.origin.url"]), url);
    assert_ne!(
        env.run(&local, "git", ["config", "remote.origin.pushurl"])
            .status,
        0
    );
    assert_ne!(
        env.run(&local, "git", ["config", "protocol.entire.allow"])
            .status,
        0
    );
    env.entire(&local, &["install", "nosuchremote"]).code(1);
    // A separate push URL is kept and wrapped, and restored by --undo.
    env.git(
        &local,
        &["remote", "set-url", "--push", "origin", "/elsewhere.git"],
    );
    env.entire(&local, &["install"]).ok();
    assert_eq!(
        env.git(&local, &["config", "remote.origin.pushurl"]),
        "entire::/elsewhere.git"
    );
    env.entire(&local, &["install", "--undo"]).ok();
    assert_eq!(
        env.git(&local, &["config", "remote.origin.pushurl"]),
        "/elsewhere.git"
    );
}

#[test]
fn checkpoints_follow_the_configured_checkpoint_remote() {
    let s = Served::new(Kind::File);
    let env = &s.env;
    let local = s.clone_local("local");
    let store = s.bare("checkpoints.git");
    env.git(&local, &["remote", "add", "cp", &s.url("checkpoints.git")]);
    env.git(&local, &["config", "entire.remote", "cp"]);
    let id = hex_id(1);
    let value = checkpoint(env, &local, &id);
    env.git(&local, &["commit", "-q", "--allow-empty", "-m", "x"]);
    // A push to origin does not carry checkpoints that belong to another remote.
    env.git(&local, &["push", "-q", "origin", "main"]);
    assert_eq!(ref_value(env, &s.path("server.git"), &cp_ref(&id)), None);
    assert_eq!(queued(env, &local), vec![cp_ref(&id)]);
    // `git entire push` goes to the checkpoint remote, and so does the lazy fetch.
    env.entire(&local, &["push"]).ok();
    assert_eq!(ref_value(env, &store, &cp_ref(&id)), Some(value));
    // settings.json wins over git config
    std::fs::create_dir_all(local.join(".entire")).expect(".entire");
    std::fs::write(
        local.join(".entire/settings.json"),
        r#"{"strategy_options": {"checkpoint_remote": "origin"}}"#,
    )
    .expect("settings");
    let other = hex_id(2);
    checkpoint(env, &local, &other);
    env.entire(&local, &["push"]).ok();
    assert!(ref_value(env, &s.path("server.git"), &cp_ref(&other)).is_some());
    std::fs::write(local.join(".entire/settings.json"), "{not json").expect("settings");
    let out = env.entire(&local, &["push"]).code(1);
    assert!(
        out.stderr.contains("settings.json"),
        "a broken settings file is named: {}",
        out.stderr
    );
}

#[test]
fn write_push_clone_show_end_to_end() {
    let s = Served::new(Kind::Http);
    let env = &s.env;
    env.git(env.path(), &["clone", "-q", &s.url("server.git"), "author"]);
    let author = env.path().join("author");
    env.entire(&author, &["install"]).ok();
    std::fs::create_dir_all(author.join(".entire")).expect(".entire");
    std::fs::write(
        author.join(".entire/settings.json"),
        r#"{"strategy_options": {"checkpoint_store": "refs-v1"}}"#,
    )
    .expect("settings");
    let session = env.path().join("session");
    std::fs::create_dir_all(&session).expect("session dir");
    std::fs::write(session.join("metadata.json"), r#"{"session_id": "s-1"}"#).expect("metadata");
    std::fs::write(session.join("full.jsonl"), "{\"type\":\"user\"}\n").expect("transcript");
    // The producer API writes and queues; a plain `git push` carries the checkpoint.
    let id = crate::fixtures::entire_write(env, &author, &session);
    commit_linking(env, &author, "feature", &[&id]);
    let out = env.run(&author, "git", ["push", "origin", "main"]).ok();
    assert!(
        out.stderr.contains("pushed 1 checkpoint(s)"),
        "{}",
        out.stderr
    );
    assert!(queued(env, &author).is_empty());
    // Elsewhere: a plain clone has no checkpoint refs; list and show fetch it on demand.
    env.git(env.path(), &["clone", "-q", &s.url("server.git"), "reader"]);
    let reader = env.path().join("reader");
    std::fs::create_dir_all(reader.join(".entire")).expect(".entire");
    std::fs::copy(
        author.join(".entire/settings.json"),
        reader.join(".entire/settings.json"),
    )
    .expect("settings");
    assert!(refs(env, &reader, CP).is_empty());
    let listed = env.entire(&reader, &["list"]).ok();
    assert!(
        listed.stdout.contains(&format!("{id}\t")),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains("\tfetched\tfeature"),
        "{}",
        listed.stdout
    );
    let shown = env.entire(&reader, &["show", &id]).ok();
    assert!(shown.stdout.contains("s-1"), "{}", shown.stdout);
}

/// v2 as the primary store: the checkpoint exists only in `v2/main` on the remote. `git entire list` on a plain
/// clone fetches `v2/main` along with the batch and lists the checkpoint as fetched.
#[test]
fn list_brings_v2_main_along_when_v2_is_on() {
    use crate::v2_write::{claude_session, claude_transcript, settings};
    const V2: &str = "refs/entire/checkpoints/v2/main";
    const V2_PRIMARY: &str = r#"{"strategy_options": {"checkpoints_version": 2}}"#;
    let s = Served::new(Kind::File);
    let env = &s.env;
    let author = s.clone_local("author");
    settings(&author, V2_PRIMARY);
    let session = claude_session(env, "s1", "sess-1", &claude_transcript("s1", 1));
    let id = crate::fixtures::entire_write(env, &author, &session);
    commit_linking(env, &author, "feature", &[&id]);
    env.run(&author, "git", ["push", "origin", "main"]).ok();
    let server = s.path("server.git");
    assert!(ref_value(env, &server, V2).is_some(), "v2/main was pushed");
    env.git(env.path(), &["clone", "-q", &s.url("server.git"), "reader"]);
    let reader = env.path().join("reader");
    settings(&reader, V2_PRIMARY);
    let listed = env.entire(&reader, &["list"]).ok();
    let row: Vec<&str> = listed.stdout.trim_end().split('\t').collect();
    assert_eq!(
        (row[0], row[2], row[3]),
        (id.as_str(), "fetched", "feature"),
        "{}",
        listed.stdout
    );
    assert_eq!(ref_value(env, &reader, V2), ref_value(env, &server, V2));
}
