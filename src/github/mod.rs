//! GitHub's API as the sync needs it: SAML identities (GraphQL), repositories and their
//! traffic (REST), with rate limits honoured and transient failures retried.

mod client;

pub use client::{
    GitHubClient, GitHubError, Repo, RetryPolicy, SamlIdentity, TrafficDay, next_link,
};
