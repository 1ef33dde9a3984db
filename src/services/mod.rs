//! Business rules and database access outside DataLoaders. Services take a connection (or a
//! transaction) and plain arguments, so they are testable without GraphQL.

pub mod restaurants;
