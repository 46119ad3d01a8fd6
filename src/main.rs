//! The `gatehouse` binary: parse the command line, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    gatehouse::cli::run(gatehouse::cli::Cli::parse()).await
}
