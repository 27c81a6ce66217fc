//! `git-remote-entire`: the git remote helper for `entire::<address>` URLs (protocol loop in `entire-helper`).
fn main() -> std::process::ExitCode {
    entire_cli::error::install_panic_hook();
    entire_cli::logging::init(0, false);
    entire_helper::main(&|| {
        entire_cli::man::remote_helper_command()
            .render_long_help()
            .to_string()
    })
}
