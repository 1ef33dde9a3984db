//! The GraphQL API: schema construction and per-request data.

pub mod common;
pub mod documents;
pub mod extensions;
pub mod integrations;
pub mod limits;
pub mod loaders;
pub mod media;
pub mod menu;
pub mod node;
pub mod orders;
pub mod payloads;
pub mod relay;
pub mod restaurants;
pub mod reviews;
pub mod root;
pub mod text_input;
pub mod users;

use std::sync::Arc;

use async_graphql::{Schema, SchemaBuilder};
use sea_orm::DatabaseConnection;

pub use loaders::Loaders;

use crate::ratelimit::RateLimiter;
pub use root::{Mutation, Query, Subscription};

/// The schema type served by dishpatch.
pub type AppSchema = Schema<Query, Mutation, Subscription>;

/// The schema's types, without any data or limits: enough to print the SDL.
pub fn schema_builder() -> SchemaBuilder<Query, Mutation, Subscription> {
    Schema::build(
        Query::default(),
        Mutation::default(),
        Subscription::default(),
    )
    .extension(extensions::ErrorCodes)
}

/// How the served schema behaves, beyond its types.
pub struct SchemaOptions {
    /// What one request may ask for.
    pub limits: crate::config::QueryLimits,
    /// Budgets to charge each request's cost to.
    pub limiter: Option<Arc<RateLimiter>>,
    /// Answer introspection queries.
    pub introspection: bool,
    /// Suggest field names in validation errors ("Did you mean ...").
    pub suggestions: bool,
    /// The allow-list, enforced on every transport.
    pub persisted: Option<Arc<crate::persisted::PersistedQueries>>,
    /// HTTP workers (threads) executing operations: the cost budget is shared out between them.
    pub workers: usize,
    /// Documents already parsed and validated, shared with the HTTP layer.
    pub documents: Arc<documents::Documents>,
    /// Keys and rules for webhook endpoints.
    pub webhooks: crate::services::webhooks::Policy,
    /// Where photos are stored, and upload limits.
    pub media: crate::media::Media,
}

/// The schema ready to execute against `db`, publishing and following events on `bus`.
pub fn build_schema(
    db: DatabaseConnection,
    bus: crate::events::EventBus,
    options: SchemaOptions,
) -> AppSchema {
    // async-graphql's own nesting check counts fragments and inline fragments as levels too;
    // `limits` checks field depth first, with a precise error, so this one only backs it up.
    let mut builder = schema_builder()
        .limit_recursive_depth(options.limits.max_depth * 2 + 8)
        .extension(limits::Limits::new(
            options.limits,
            options.limiter,
            options.persisted,
            options.workers,
            options.documents,
        ))
        .extension(extensions::Observe)
        .data(db)
        .data(bus)
        .data(options.webhooks)
        .data(options.media);
    if !options.introspection {
        builder = builder.disable_introspection();
    }
    if !options.suggestions {
        builder = builder.disable_suggestions();
    }
    builder.finish()
}

/// The SDL of the public contract, as committed in `schema.graphql`.
pub fn sdl() -> String {
    schema_builder().finish().sdl()
}
