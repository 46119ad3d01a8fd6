//! The `gatehouse` binary: parse the command line, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than the C library's allocator: a request allocates and frees many small
/// strings and a few larger buffers, and glibc's malloc spent a fifth of the server's time on
/// a busy search (consolidating free lists under the larger frees), mimalloc a few percent.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    gatehouse::cli::run(gatehouse::cli::Cli::parse()).await
}
