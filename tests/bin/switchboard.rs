//! The switchboard command line, for tests that run it as a process.

fn main() -> std::process::ExitCode {
    switchboard::cli::main()
}
