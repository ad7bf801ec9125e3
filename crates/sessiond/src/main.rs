//! The `sessiond` binary: the server and its operator CLI.

fn main() -> std::process::ExitCode {
    sessiond::cli::main()
}
