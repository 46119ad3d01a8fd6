//! Integration tests: one binary (one link step), real PostgreSQL, Redis, node oidc-provider
//! and Chromium, each started or reached on loopback by `support`.

/// The allocator the binary runs with, so that what runs in-process here (the benchmarks
/// above all) allocates as it does in production.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod account;
mod admin;
mod api;
mod audit;
mod backchannel;
mod balancer;
mod bench;
mod browser;
mod cli;
mod csrf;
mod devidp;
mod directory;
mod email_trust;
mod faults;
mod gcp;
mod http;
mod idp;
mod import;
mod lifecycle;
mod pg_tls;
mod pipeline;
mod ratelimit;
mod readme;
mod repos;
mod repos_api;
mod roles;
mod sessions;
mod signin;
mod signin_refusals;
mod stepup;
mod store;
mod support;
mod sync;
mod traces;
