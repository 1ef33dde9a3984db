//! Menus: categories and items.

pub mod loaders;
pub mod types;
