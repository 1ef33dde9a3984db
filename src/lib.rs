//! dishpatch: the GraphQL backend of a food ordering and delivery marketplace.
//!
//! `app::Application` is the whole server; the binary and the integration tests both build it.
// The fields of an object are resolved without a boxed future each (vendor/async-graphql,
// PATCHED.md change 4), so proving a resolver future `Send` walks the nested types of the
// schema, which is deeper than the default limit of 128.
#![recursion_limit = "512"]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod media;
pub mod metrics;
pub mod persisted;
pub mod ratelimit;
pub mod seed;
pub mod services;
pub mod shared_state;
pub mod shutdown;
pub mod telemetry;
pub mod webhooks;
pub mod ws;
