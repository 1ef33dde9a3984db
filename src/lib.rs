//! dishpatch: the GraphQL backend of a food ordering and delivery marketplace.
//!
//! `app::Application` is the whole server; the binary and the integration tests both build it.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod persisted;
pub mod ratelimit;
pub mod seed;
pub mod services;
pub mod shared_state;
pub mod telemetry;
pub mod ws;
