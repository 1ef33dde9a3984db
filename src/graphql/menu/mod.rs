//! Menus: categories and items.

pub mod import;
pub mod loaders;
pub mod mutation;
pub mod subscription;
pub mod types;
