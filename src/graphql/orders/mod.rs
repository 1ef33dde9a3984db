//! Orders and deliveries: the order lifecycle as the API shows it.

pub mod loaders;
pub mod mutation;
pub mod query;
pub mod subscription;
pub mod types;
