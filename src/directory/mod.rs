//! The directory: who is who on GitHub, their laptops and lists.
//!
//! `model` holds its types, `search` the query model (sort keys, cursors) that the page, the
//! JSON route and the API share, `index` the in-memory rows every search and page reads,
//! `dump` the whole directory as one answer, `pages` and `api` the handlers, `store` the
//! queries, `feeds` and `import` the snapshot imports.

pub mod api;
pub mod dump;
pub mod feeds;
pub mod import;
pub mod index;
mod model;
pub mod pages;
pub mod search;
pub mod store;

pub use model::*;
