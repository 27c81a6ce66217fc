//! `entire::sync::remote::resolve` must agree with `git remote get-url [--push]` (minus `entire::`), whatever mix of
//! `url`, `pushurl`, `insteadOf` and `pushInsteadOf` a remote has.

use crate::env::TestEnv;
use entire::git::repo::Repo;
use entire::sync::remote::{self, strip_helper_prefix};

#[test]
fn resolve_matches_git_remote_get_url() {
    let env = TestEnv::new();
    let repo = env.repo("r");
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("plain", &[("remote.plain.url", "/srv/a.git")]),
        (
            "split",
            &[
                ("remote.split.url", "/srv/a.git"),
                ("remote.split.pushurl", "ssh://h/a.git"),
            ],
        ),
        (
            "short",
            &[
                ("remote.short.url", "short:a.git"),
                ("url./srv/.insteadOf", "short:"),
            ],
        ),
        (
            "pushrw",
            &[
                ("remote.pushrw.url", "/data/a.git"),
                ("url./push/.pushInsteadOf", "/data/"),
            ],
        ),
        (
            "wrapped",
            &[("remote.wrapped.url", "entire::https://h/x.git")],
        ),
        (
            "wrappedpush",
            &[
                ("remote.wrappedpush.url", "https://h/x.git"),
                ("remote.wrappedpush.pushurl", "entire::https://h/x.git"),
            ],
        ),
        ("scp", &[("remote.scp.url", "git@h:org/x.git")]),
    ];
    for (_, settings) in cases {
        for (k, v) in *settings {
            env.git(&repo, &["config", k, v]);
        }
    }
    let opened = Repo::discover(&repo).expect("repo opens");
    for (name, _) in cases {
        let got = remote::resolve(Some(&opened), name).expect("resolves");
        let fetch = env.git(&repo, &["remote", "get-url", name]);
        let push = env.git(&repo, &["remote", "get-url", "--push", name]);
        assert_eq!(got.fetch_url, strip_helper_prefix(&fetch), "{name} fetch");
        assert_eq!(got.push_url, strip_helper_prefix(&push), "{name} push");
        assert_eq!(got.name.as_deref(), Some(*name));
    }
}
