//! Who is asking and what they may do: the `Viewer`, tokens, OAuth login, guards.

pub mod guards;
pub mod kept_key;
pub mod oauth;
pub mod secrets;
pub mod tokens;
pub mod viewer;

pub use viewer::{Role, Scope, Viewer};
