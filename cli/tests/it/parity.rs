//! `entire::<url>` behaves exactly like the plain URL, and git's settings win: the same fetch, clone or
//! ls-remote is run against the plain URL and against `entire::<url>` (file://, git daemon, smart HTTP, ssh),
//! comparing refs, exit codes and the user-visible status lines; `git -c` / `GIT_CONFIG_*` and git's
//! transport policy are honoured by every in-process read.

use std::path::Path;

use crate::env::{Run, TestEnv};
use crate::fixtures::{cp_ref, hex_id, path_str, ref_value, write_checkpoint};

const NS: &str = "refs/entire/checkpoints/";

/// Run `git <config args…> entire fetch <id>` in `dir` with extra environment variables.
fn entire_fetch(
    env: &TestEnv,
    dir: &Path,
    vars: &[(&str, &str)],
    config: &[&str],
    id: &str,
) -> Run {
    let mut c = env.cmd("git", dir);
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c
        .args(config)
        .args(["entire", "fetch", id])
        .output()
        .expect("runs");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
        stdout_bytes: out.stdout,
    }
}

#[test]
fn git_config_overrides_win_for_in_process_settings() {
    let env = TestEnv::new();
    let empty = env.bare("empty.git");
    let full = env.bare("full.git");
    let seed = env.repo("seed");
    let id = hex_id(7);
    write_checkpoint(&env, &seed, &id, None);
    env.git(
        &seed,
        &["push", "-q", path_str(&full), &format!("{NS}*:{NS}*")],
    );
    let local = env.repo("local");
    env.git(&local, &["remote", "add", "origin", path_str(&empty)]);
    let forget = || env.git(&local, &["update-ref", "-d", &cp_ref(&id)]);
    let fetched = || ref_value(&env, &local, &cp_ref(&id)).is_some();
    // The configured checkpoint remote (origin) lacks the checkpoint.
    entire_fetch(&env, &local, &[], &[], &id).code(1);
    // A remote that exists only on the command line, chosen by `entire.remote`, also only on the command line.
    let remote_url = format!("remote.cmdline.url={}", path_str(&full));
    let config = ["-c", &remote_url, "-c", "entire.remote=cmdline"];
    entire_fetch(&env, &local, &[], &config, &id).ok();
    assert!(fetched());
    forget();
    // `url.<base>.insteadOf` given with `-c` rewrites the checkpoint remote's URL as git would.
    let base = format!("url.{}.insteadOf={}", path_str(&full), path_str(&empty));
    entire_fetch(&env, &local, &[], &["-c", &base], &id).ok();
    assert!(fetched());
    forget();
    // The same settings through GIT_CONFIG_COUNT; `-c` comes later in git's order and wins over it.
    let vars = [
        ("GIT_CONFIG_COUNT", "2"),
        ("GIT_CONFIG_KEY_0", "remote.count.url"),
        ("GIT_CONFIG_VALUE_0", path_str(&full)),
        ("GIT_CONFIG_KEY_1", "entire.remote"),
        ("GIT_CONFIG_VALUE_1", "count"),
    ];
    entire_fetch(&env, &local, &vars, &["-c", "entire.remote=origin"], &id).code(1);
    entire_fetch(&env, &local, &vars, &[], &id).ok();
    assert!(fetched());
}
