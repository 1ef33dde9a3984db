//! The GraphQL API: schema construction and per-request data.

pub mod common;
pub mod extensions;
pub mod integrations;
pub mod loaders;
pub mod menu;
pub mod node;
pub mod orders;
pub mod payloads;
pub mod relay;
pub mod restaurants;
pub mod reviews;
pub mod root;
pub mod users;

use async_graphql::{Schema, SchemaBuilder};
use sea_orm::DatabaseConnection;

pub use loaders::Loaders;
pub use root::{Mutation, Query, Subscription};

/// The schema type served by dishpatch.
pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// Deepest selection accepted.
pub const MAX_DEPTH: usize = 16;

/// The schema's types and limits, without any data: enough to print the SDL.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .extension(extensions::ErrorCodes)
    .limit_depth(MAX_DEPTH)
}

/// The schema ready to execute against `db`, publishing and following events on `bus`.
pub fn build_schema(db: DatabaseConnection, bus: crate::events::EventBus) -> AppSchema {
    schema_builder().data(db).data(bus).finish()
}

/// The SDL of the public contract, as committed in `schema.graphql`.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
