fn main() -> std::process::ExitCode {
    entire::cli::main_git_entire_migrate()
}
