//! The `dishpatch` binary: parse the command line and run the command.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    dishpatch::cli::run().await
}
