//! Users: public profiles, the viewer, and what admins manage.

pub mod addresses;
pub mod mutation;
pub mod query;
pub mod types;
