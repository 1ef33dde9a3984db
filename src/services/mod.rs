//! Business rules and database access outside DataLoaders. Services take a connection (or a
//! transaction) and plain arguments, so they are testable without GraphQL.

pub mod api_tokens;
pub mod restaurants;
pub mod sessions;
pub mod users;
