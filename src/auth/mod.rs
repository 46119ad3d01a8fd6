//! Identity: signing keys, the JWKS cache and token verification (sign-in and, later, the
//! Bearer API share them).

pub mod jwks;
pub mod signing;
pub mod verify;

#[cfg(test)]
mod tests;
