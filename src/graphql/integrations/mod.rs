//! What integrators use: API tokens.

pub mod mutation;
pub mod types;
