//! The GraphQL API: schema construction and per-request data.

pub mod common;
pub mod extensions;
pub mod integrations;
pub mod loaders;
pub mod menu;
pub mod node;
pub mod payloads;
pub mod relay;
pub mod restaurants;
pub mod reviews;
pub mod root;
pub mod users;

use async_graphql::{EmptySubscription, Schema, SchemaBuilder};
use sea_orm::DatabaseConnection;

pub use loaders::Loaders;
pub use root::{Mutation, Query};

/// The schema type served by dishpatch.
pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

/// Deepest selection accepted.
pub const MAX_DEPTH: usize = 16;

/// The schema's types and limits, without any data: enough to print the SDL.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .extension(extensions::ErrorCodes)
        .limit_depth(MAX_DEPTH)
}

/// The schema ready to execute against `db`.
pub fn build_schema(db: DatabaseConnection) -> AppSchema {
    schema_builder().data(db).finish()
}

/// The SDL of the public contract, as committed in `schema.graphql`.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
