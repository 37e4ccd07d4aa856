//! `ciq-gateway`: see `ciq-gateway --help`.

/// mimalloc rather than glibc's malloc: the request path allocates and frees many
/// small objects on two runtime threads, where glibc's arena locks and consolidation
/// showed up as about a sixth of the gateway's CPU time in profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ciq_gateway::cli::run()
}
