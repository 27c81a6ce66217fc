fn main() -> std::process::ExitCode {
    entire_cli::main_git_entire()
}
