//! The man pages in `man/` must be what the current clap definitions render (`git entire __man man`).

use std::path::Path;

use crate::env::TestEnv;

#[test]
fn committed_man_pages_are_current() {
    let env = TestEnv::new();
    let out = env.path().join("man");
    env.entire(env.path(), &["__man", out.to_str().expect("utf-8")])
        .ok();
    for page in ["git-entire.1", "git-remote-entire.1"] {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../man")
            .join(page);
        let fresh = std::fs::read_to_string(out.join(page)).expect("generated page");
        let committed = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            committed == fresh,
            "man/{page} is stale: run `cargo run -p entire-cli --bin git-entire -- __man man`"
        );
    }
    let helper = env.run(env.path(), "git-remote-entire", ["--help"]).ok();
    assert!(
        helper.stdout.contains("entire::<address>"),
        "{}",
        helper.stdout
    );
}
