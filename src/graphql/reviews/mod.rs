//! Reviews of restaurants.

pub mod loaders;
pub mod types;
