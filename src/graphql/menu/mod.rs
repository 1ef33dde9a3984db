//! Menus: categories and items.

pub mod loaders;
pub mod mutation;
pub mod types;
