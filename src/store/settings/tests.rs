use super::*;
use serde_json::json;

fn run(v: Value) -> Result<Rollout, String> {
    let Value::Object(m) = v else {
        panic!("object expected")
    };
    interpret(&m, Path::new("s.json"), |_| None)
        .map(|s| s.rollout)
        .map_err(|e| e.to_string())
}

#[test]
fn rollout_table() {
    let ok = [
        (json!({}), Rollout::BRANCH),
        (json!({"strategy_options": {}}), Rollout::BRANCH),
        (
            json!({"strategy_options": {"checkpoint_store": "refs-v1-mirror"}}),
            Rollout::REFS_MIRROR,
        ),
        (
            json!({"strategy_options": {"checkpoint_store": "refs-v1"}}),
            Rollout::REFS,
        ),
        (
            json!({"checkpoints": {"primary": {"type": "git-refs"}}}),
            Rollout::REFS,
        ),
        (
            json!({"checkpoints": {"primary": {"type": "git-refs"}, "mirrors": [{"type": "git-branch"}]}}),
            Rollout::REFS_MIRROR,
        ),
        (
            json!({"checkpoints": {"primary": {"type": "git-branch"}}}),
            Rollout::BRANCH,
        ),
        (
            json!({"strategy_options": {"checkpoint_store": "refs-v1"}, "checkpoints": {"primary": {"type": "git-branch"}}}),
            Rollout::REFS,
        ),
    ];
    for (v, want) in ok {
        assert_eq!(run(v.clone()), Ok(want), "{v}");
    }
    let bad = [
        (
            json!({"strategy_options": {"checkpoint_store": "refs-v2"}}),
            "unknown mode \"refs-v2\"",
        ),
        (
            json!({"strategy_options": {"checkpoint_store": 1}}),
            "must be a string",
        ),
        (
            json!({"strategy_options": []}),
            "strategy_options must be an object",
        ),
        (
            json!({"checkpoints": {"primary": {"type": "s3"}}}),
            "unknown store type",
        ),
        (
            json!({"checkpoints": {"primary": {"type": "git-refs"}, "extra": 1}}),
            "unknown field",
        ),
        (json!({"checkpoints": {}}), "primary is required"),
        (
            json!({"checkpoints": {"primary": {"type": "git-refs"}, "mirrors": [{"type": "git-refs"}]}}),
            "more than once",
        ),
    ];
    for (v, want) in bad {
        let err = run(v.clone()).expect_err("must fail");
        assert!(
            err.contains(want) && err.starts_with("s.json"),
            "{v}: {err}"
        );
    }
}

#[test]
fn v2_switches_table() {
    let refs_v2 = Rollout::REFS_MIRROR.with_mirror(Backend::V2);
    let ok = [
        (
            json!({"strategy_options": {"checkpoints_v2": true}}),
            Rollout::BRANCH.with_mirror(Backend::V2),
        ),
        (
            json!({"strategy_options": {"checkpoints_v2": true, "checkpoint_store": "refs-v1-mirror"}}),
            refs_v2,
        ),
        (
            json!({"strategy_options": {"checkpoints_version": 2}}),
            Rollout::V2,
        ),
        (json!({"checkpoints_version": 2}), Rollout::V2),
        (
            json!({"strategy_options": {"checkpoints_version": 2, "checkpoints_v2": true}}),
            Rollout::V2,
        ),
        (
            json!({"strategy_options": {"checkpoints_version": 1, "checkpoints_v2": false}}),
            Rollout::BRANCH,
        ),
        (
            json!({"checkpoints": {"primary": {"type": "git-v2"}, "mirrors": [{"type": "git-refs"}]}}),
            Rollout::V2.with_mirror(Backend::GitRefs),
        ),
        (
            json!({"checkpoints_version": 2, "checkpoints": {"primary": {"type": "git-v2"}, "mirrors": [{"type": "git-branch"}]}}),
            Rollout::V2.with_mirror(Backend::GitBranch),
        ),
    ];
    for (v, want) in ok {
        assert_eq!(run(v.clone()), Ok(want), "{v}");
    }
    let bad = [
        (
            json!({"strategy_options": {"checkpoints_version": 2, "checkpoint_store": "refs-v1"}}),
            "selects the checkpoint ref store as primary",
        ),
        (
            json!({"checkpoints_version": 2, "checkpoints": {"primary": {"type": "git-branch"}}}),
            "checkpoints.primary selects the legacy branch",
        ),
        (
            json!({"strategy_options": {"checkpoints_version": 2, "checkpoints_v2": false}}),
            "checkpoints_v2 is false",
        ),
        (
            json!({"strategy_options": {"checkpoints_v2": false}, "checkpoints": {"primary": {"type": "git-refs"}, "mirrors": [{"type": "git-v2"}]}}),
            "checkpoints_v2 is false, but checkpoints.primary selects the v2 layout",
        ),
        (
            json!({"strategy_options": {"checkpoints_version": 3}}),
            "must be 1 or 2",
        ),
        (
            json!({"strategy_options": {"checkpoints_version": "2"}}),
            "must be 1 or 2",
        ),
        (
            json!({"strategy_options": {"checkpoints_version": 2}, "checkpoints_version": 1}),
            "contradicts",
        ),
        (
            json!({"strategy_options": {"checkpoints_v2": "yes"}}),
            "must be true or false",
        ),
    ];
    for (v, want) in bad {
        let err = run(v.clone()).expect_err("must fail");
        assert!(
            err.contains(want) && err.starts_with("s.json"),
            "{v}: {err}"
        );
    }
    assert_eq!(refs_v2.name(), "refs-v1-mirror+v2");
    assert_eq!(Rollout::V2.name(), "v2");
    assert_eq!(Rollout::BRANCH.with_mirror(Backend::V2).name(), "v1+v2");
}

#[test]
fn local_file_overrides_key_by_key() {
    let mut base = json!({"strategy_options": {"checkpoint_store": "refs-v1-mirror", "push_sessions": true},
                          "checkpoints": {"primary": {"type": "git-refs"}, "mirrors": [{"type": "git-branch"}]}});
    let over = json!({"strategy_options": {"checkpoint_store": "refs-v1"}, "checkpoints": {"primary": {"type": "git-branch"}}});
    let (Value::Object(b), Value::Object(o)) = (&mut base, over) else {
        panic!("objects")
    };
    merge(b, o, true);
    assert_eq!(
        base,
        json!({"strategy_options": {"checkpoint_store": "refs-v1", "push_sessions": true},
               "checkpoints": {"primary": {"type": "git-branch"}}})
    );
}

#[test]
fn env_override() {
    let m = Map::new();
    let env = |k: &str| match k {
        "ENTIRE_CHECKPOINTS_PRIMARY" => Some("git-refs".to_string()),
        "ENTIRE_CHECKPOINTS_MIRRORS" => Some("git-branch".to_string()),
        _ => None,
    };
    assert_eq!(
        interpret(&m, Path::new("x"), env).expect("valid").rollout,
        Rollout::REFS_MIRROR
    );
    let bad = |k: &str| (k == "ENTIRE_CHECKPOINTS_PRIMARY").then(|| "nope".to_string());
    assert!(interpret(&m, Path::new("x"), bad).is_err());
}

#[test]
fn committed_settings_are_parsed_and_errors_name_the_blob() {
    let origin = Path::new("abc123:.entire/settings.json");
    let s = from_committed(
        br#"{"strategy_options": {"checkpoint_store": "refs-v1"}}"#,
        origin,
    )
    .expect("valid");
    assert_eq!(s.rollout, Rollout::REFS);
    for bad in [&b"{bad"[..], b"[1]", b"\"s\""] {
        let e = from_committed(bad, origin)
            .expect_err("invalid")
            .to_string();
        assert!(e.contains("abc123:.entire/settings.json"), "{e}");
    }
    let huge = vec![b' '; (MAX_SETTINGS_BYTES + 1) as usize];
    assert!(from_committed(&huge, origin).is_err());
}
