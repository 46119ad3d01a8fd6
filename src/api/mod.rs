//! The JSON API (SPEC §5.3): Bearer access tokens from the same identity provider(s), scopes
//! per endpoint, errors per RFC 6750.

pub mod bearer;
pub mod doc;
pub mod routes;
