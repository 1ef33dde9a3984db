//! What integrators use: API tokens and webhooks.

pub mod mutation;
pub mod types;
pub mod webhooks;
