//! Two clones push at the same moment (issue #13, "racing"): both connections read the same remote tips, the
//! server's pre-receive hook holds each until the other has arrived, then both update refs. The loser's
//! shared refs fail the server's compare-and-swap (`failed to update ref` / `incorrect old value provided`,
//! not a client-side `non-fast-forward`): the helper must fetch, merge and push again like for any divergence,
//! so that after both pushes the remote holds every checkpoint of both in every layout, nothing forced.

use std::path::Path;
use std::process::{Child, Stdio};

use crate::fixtures::{hex_id, queued, ref_value};
use crate::shared_recover::{
    contains, missing, two_clones, write, CURRENT, LEGACY, MAIN, V2_MIRROR, V2_PRIMARY,
};
use crate::transports::{Kind, Served};

/// A pre-receive hook that lets a push on only once a second one has arrived (at most 20 s), for the first
/// two pushes; later pushes (the recovery's retry) pass at once.
fn barrier_hook(s: &Served) {
    let dir = s.env.path().join("race");
    std::fs::create_dir_all(&dir).expect("race dir");
    let d = dir.display();
    s.hook(
        "server.git",
        "pre-receive",
        &format!(
            "cat >/dev/null\n[ -e {d}/released ] && exit 0\ntouch {d}/arrived-$$\ni=0\n\
             while [ \"$(ls {d} | grep -c '^arrived-')\" -lt 2 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n\
             touch {d}/released\nexit 0"
        ),
    );
}

fn push(s: &Served, repo: &Path, spec: &str) -> Child {
    s.env
        .cmd("git", repo)
        .args(["push", "origin", spec])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git push starts")
}

fn racing_pushes_converge(kind: Kind, mode: &str) {
    let s = Served::new(kind);
    let env = &s.env;
    let server = s.path("server.git");
    let (a, b) = two_clones(&s, mode);
    // Both clones have pushed once, so every shared ref exists remotely and the race is about moving them.
    let shared = hex_id(7);
    let mut ids = vec![write(env, &a, "a0", None)];
    env.git(&a, &["commit", "-q", "--allow-empty", "-m", "a0"]);
    env.run(&a, "git", ["push", "origin", "main"]).ok();
    ids.push(write(env, &b, "b0", None));
    env.git(&b, &["commit", "-q", "--allow-empty", "-m", "b0"]);
    env.run(&b, "git", ["push", "origin", "main:refs/heads/b"])
        .ok();
    // a takes b's merged shared refs (fast-forward): both clones now start from the remote's tips.
    let layouts: Vec<&str> = [LEGACY, MAIN, CURRENT]
        .into_iter()
        .filter(|r| ref_value(env, &server, r).is_some())
        .collect();
    let specs: Vec<String> = layouts.iter().map(|r| format!("{r}:{r}")).collect();
    let mut fetch = vec!["fetch", "-q", "origin"];
    fetch.extend(specs.iter().map(String::as_str));
    env.git(&a, &fetch);
    for r in &layouts {
        assert_eq!(ref_value(env, &a, r), ref_value(env, &b, r), "{r} in step");
    }
    let before: Vec<(&str, Option<String>)> = [LEGACY, MAIN, CURRENT]
        .into_iter()
        .map(|r| (r, ref_value(env, &server, r)))
        .collect();
    ids.push(write(env, &a, "a1", None));
    ids.push(write(env, &b, "b1", None));
    write(env, &a, "a2", Some(&shared));
    write(env, &b, "b2", Some(&shared));
    ids.push(shared.clone());
    env.git(&a, &["commit", "-q", "--allow-empty", "-m", "a"]);
    env.git(&b, &["commit", "-q", "--allow-empty", "-m", "b"]);
    barrier_hook(&s);
    let (pa, pb) = (push(&s, &a, "main"), push(&s, &b, "main:refs/heads/b"));
    let (oa, ob) = (
        pa.wait_with_output().expect("a's push ends"),
        pb.wait_with_output().expect("b's push ends"),
    );
    let (ea, eb) = (
        String::from_utf8_lossy(&oa.stderr),
        String::from_utf8_lossy(&ob.stderr),
    );
    assert!(s.env.path().join("race/released").exists(), "the hook ran");
    assert!(
        oa.status.success() && ob.status.success(),
        "a:\n{ea}\nb:\n{eb}"
    );
    for (repo, branch) in [(&a, "refs/heads/main"), (&b, "refs/heads/b")] {
        assert_eq!(
            ref_value(env, &server, branch),
            ref_value(env, repo, "refs/heads/main"),
            "{branch} landed"
        );
    }
    let lost = missing(&s, &[&a, &b], &ids, &shared, &["a2", "b2"]);
    assert!(lost.is_empty(), "missing: {lost:?}\na:\n{ea}\nb:\n{eb}");
    for (r, old) in &before {
        if let (Some(old), Some(new)) = (old, ref_value(env, &server, r)) {
            assert!(contains(env, &server, old, &new), "{r} forced");
        }
    }
    for repo in [&a, &b] {
        let left = queued(env, repo);
        assert!(
            !left.iter().any(|r| r == MAIN || r == CURRENT),
            "shared refs still queued: {left:?}\na:\n{ea}\nb:\n{eb}"
        );
    }
    env.git(&server, &["fsck", "--no-progress", "--no-dangling"]);
}

#[test]
fn racing_pushes_converge_over_file() {
    racing_pushes_converge(Kind::File, V2_MIRROR);
}

#[test]
fn racing_pushes_converge_over_http() {
    racing_pushes_converge(Kind::Http, V2_PRIMARY);
}
