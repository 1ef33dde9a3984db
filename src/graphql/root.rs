//! The root types, merged from the domains.

use async_graphql::MergedObject;

use super::{node::NodeQuery, restaurants::query::RestaurantQuery};

/// Everything that can be read.
#[derive(MergedObject, Default)]
pub struct Query(NodeQuery, RestaurantQuery);
