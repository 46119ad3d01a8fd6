//! Gatehouse: the secure internal portal. `main` parses the command line and calls `cli::run`;
//! tests call `build_app` and `app::start` directly.

pub mod account;
pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod check;
pub mod cli;
pub mod config;
pub mod devidp;
pub mod directory;
pub mod home;
pub mod lifecycle;
pub mod logging;
pub mod pipeline;
pub mod redis_client;
pub mod repos;
pub mod sample;
pub mod state;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod web;

pub use app::build_app;
