//! Migration reruns after both stores moved (issue #8 item 9, seed 003): refs are authoritative, so a rerun
//! merges the legacy branch's new sessions into the ref by `session_id` and never drops a refs-only session.

use crate::env::TestEnv;
use crate::fixtures::{path_str, session, set_mode};

#[test]
fn rerun_merges_legacy_only_sessions_and_keeps_refs_only_ones() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    let s = |name: &str| {
        session(
            &env,
            name,
            &format!(r#"{{"session_id": "{name}"}}"#),
            b"t\n",
        )
    };
    let (a, b, c) = (s("sess-a"), s("sess-b"), s("sess-c"));
    let id = "0123456789ab";
    set_mode(&repo, None);
    env.entire(&repo, &["write", "--id", id, path_str(&a)]).ok();
    let migrate = || env.run(&repo, "git", ["entire-migrate", "--no-sign"]).ok();
    migrate();
    // A session written to the authoritative ref store only …
    set_mode(&repo, Some("refs-v1"));
    env.entire(&repo, &["write", "--id", id, path_str(&b)]).ok();
    // … and a teammate (still on the legacy branch) adds another one there.
    set_mode(&repo, None);
    env.entire(&repo, &["write", "--id", id, path_str(&c)]).ok();
    migrate();
    set_mode(&repo, Some("refs-v1"));
    let root: serde_json::Value =
        serde_json::from_str(&env.entire(&repo, &["show", id]).ok().stdout).expect("json");
    let slots = root["sessions"].as_array().map(Vec::len);
    assert_eq!(slots, Some(3), "a, b and c all kept: {root}");
    let mut owners: Vec<String> = (0..3)
        .map(|n| {
            let meta = env
                .entire(&repo, &["show", id, &format!("{n}/metadata.json")])
                .ok();
            let v: serde_json::Value = serde_json::from_str(&meta.stdout).expect("json");
            v["session_id"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    owners.sort();
    assert_eq!(owners, ["sess-a", "sess-b", "sess-c"]);
    // A third run has nothing left to do.
    let again = env.run(&repo, "git", ["entire-migrate", "--no-sign"]).ok();
    assert!(again.stdout.contains("migrated 0"), "{}", again.stdout);
}
