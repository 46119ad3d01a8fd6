//! Identity: signing keys, the JWKS cache and token verification (sign-in and, later, the
//! Bearer API share them).

pub mod extract;
pub mod jwks;
pub mod oidc;
pub mod routes;
pub mod service;
pub mod session;
pub mod signing;
pub mod verify;

#[cfg(test)]
mod tests;
