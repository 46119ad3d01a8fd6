//! The `gatehouse` binary: parse the command line, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than the C library's allocator: a request allocates and frees many small
/// strings and a few larger buffers, and glibc's malloc spent a fifth of the server's time on
/// a busy search (consolidating free lists under the larger frees). mimalloc was as fast but
/// doubled the idle memory (34 MB against 18 MB); jemalloc kept it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    gatehouse::cli::run(gatehouse::cli::Cli::parse()).await
}
