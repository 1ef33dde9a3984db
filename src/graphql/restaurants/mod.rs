//! Restaurants: browsing, filtering and the restaurant page.

pub mod loaders;
pub mod mutation;
pub mod query;
pub mod types;
