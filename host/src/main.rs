//! The `switchboard` binary; the command line itself is [`switchboard::cli`].

fn main() -> std::process::ExitCode {
    switchboard::cli::main()
}
