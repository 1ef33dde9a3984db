//! SeaORM entities of the dishpatch marketplace: tables and relations only.
//!
//! Nothing here derives GraphQL types: the API is shaped in `dishpatch::graphql`, so a column
//! can change without changing the public contract.

pub mod address;
pub mod api_token;
pub mod delivery;
pub mod identity;
pub mod image;
pub mod menu_category;
pub mod menu_item;
pub mod menu_option;
pub mod menu_option_group;
pub mod opening_hours;
pub mod order;
pub mod order_event;
pub mod order_item;
pub mod refresh_token;
pub mod restaurant;
pub mod restaurant_closure;
pub mod restaurant_cuisine;
pub mod restaurant_staff;
pub mod review;
pub mod status;
pub mod user;
pub mod webhook;
pub mod webhook_delivery;

pub use status::{DeliveryStatus, OrderEventKind, OrderStatus, WebhookDeliveryStatus};

mod by_position;
pub use by_position::{FromRowByPosition, ReadColumn, read_rows};
