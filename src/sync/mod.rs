//! The GitHub sync: SAML identities (work email → login) and repositories (traffic, popular
//! referrers and paths, stars and forks), read from GitHub and written in one transaction, one
//! run at a time across processes.

pub mod github;
mod model;
pub mod plan;
pub mod runner;
pub mod service;
pub mod store;

pub use model::*;
pub use plan::{Fetched, IdentityCounts, RepoCounts};
