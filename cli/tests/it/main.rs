//! The one integration-test binary. Every module listed here is checked against the files on disk.
mod attach;
mod attach_analysis;
mod cli_transport;
mod env;
mod fixtures;
mod helper_fetch;
mod helper_push;
mod helper_push_interrupt;
mod helper_push_wire;
mod helper_t5801;
mod install;
mod man_pages;
mod messages;
mod migrate;
mod migrate_history;
mod migrate_options;
mod migrate_v2;
mod migrate_v2_runs;
mod parity;
mod push_parity;
mod push_runs;
mod queue;
mod readonly;
mod remote_resolution;
mod servers;
mod shared_kill;
mod shared_push;
mod shared_race;
mod shared_recover;
mod shared_rotation;
mod storage_exits;
mod storage_formats;
mod storage_locks;
mod storage_migrate;
mod store;
mod store_concurrency;
mod store_sample;
mod tasks;
mod transports;
mod v2_compact;
mod v2_lazy_read;
mod v2_rotation;
mod v2_write;
mod validation;

#[test]
fn no_forgotten_test_modules() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let main = std::fs::read_to_string(dir.join("main.rs")).expect("read main.rs");
    for entry in std::fs::read_dir(&dir).expect("read tests/it") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .into_string()
            .expect("utf-8 name");
        if let Some(stem) = name.strip_suffix(".rs") {
            if stem != "main" {
                assert!(
                    main.contains(&format!("mod {stem};")),
                    "tests/it/{name} is not listed in main.rs"
                );
            }
        }
    }
}
