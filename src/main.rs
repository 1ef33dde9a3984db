//! The `dishpatch` binary: parse the command line and run the command.

/// mimalloc: a GraphQL response is thousands of small short-lived allocations, where glibc's
/// allocator spent a quarter of the CPU in the benchmark's profile and held on to freed memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    dishpatch::cli::run().await
}
