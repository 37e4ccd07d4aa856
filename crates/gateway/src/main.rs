//! `ciq-gateway`: see `ciq-gateway --help`.

fn main() -> std::process::ExitCode {
    ciq_gateway::cli::run()
}
