//! Users as others see them.

pub mod types;
