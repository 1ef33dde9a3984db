//! The root types, merged from the domains.

use async_graphql::MergedObject;

use super::{
    integrations::mutation::ApiTokenMutation,
    node::NodeQuery,
    restaurants::query::RestaurantQuery,
    users::{mutation::UserMutation, query::ViewerQuery},
};

/// Everything that can be read.
#[derive(MergedObject, Default)]
pub struct Query(ViewerQuery, NodeQuery, RestaurantQuery);

/// Everything that can be changed.
#[derive(MergedObject, Default)]
pub struct Mutation(ApiTokenMutation, UserMutation);
