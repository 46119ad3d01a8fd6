//! The HTTP shell: what a route is (`routes`), the one error type and its renderer
//! (`error`), the extractors (`extract`), the shared outer layers (`middleware`), the layers
//! of the shell itself (client address, CSRF, rate limits, the audit line), probes, assets,
//! metrics, the base page layout, and the accept loop that serves it all (`serve`). It names no feature and no identity mechanism: the
//! identity layers in `auth` hand it a `Principal`, and `crate::pipeline` puts it together.

pub mod assets;
pub mod audit;
pub mod client_ip;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod principal;
pub mod ratelimit;
pub mod routes;
pub mod serve;
