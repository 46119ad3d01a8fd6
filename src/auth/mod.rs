//! Identity: every check of who is asking. Sign-in (OpenID Connect), sessions, the Bearer
//! access-token verifier, the JWKS cache and token verification they share, admin and role
//! decisions (`access`), the pipeline's identity layers (`layers`) and the extractors
//! handlers take (`extract`).

pub mod access;
pub mod backchannel;
pub mod bearer;
pub mod discovery;
pub mod extract;
pub mod grants;
pub mod jwks;
pub mod layers;
pub mod oidc;
pub mod roles;
pub mod roles_apply;
pub mod roles_file;
pub mod routes;
pub mod service;
pub mod session;
pub mod session_db;
pub mod signing;
pub mod users;
pub mod verify;

#[cfg(test)]
mod tests;
