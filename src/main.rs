//! The `custodian` binary: everything lives in the library; this only runs the CLI.

fn main() -> std::process::ExitCode {
    custodian::cli::main()
}
