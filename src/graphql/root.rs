//! The root types, merged from the domains.

use async_graphql::{MergedObject, MergedSubscription};

use super::{
    integrations::{mutation::ApiTokenMutation, webhooks::WebhookMutation},
    media::MediaMutation,
    menu::{import::MenuImportMutation, mutation::MenuMutation, subscription::MenuSubscription},
    node::NodeQuery,
    orders::{mutation::OrderMutation, query::OrderQuery, subscription::OrderSubscription},
    restaurants::{mutation::RestaurantMutation, query::RestaurantQuery},
    users::{addresses::AddressMutation, mutation::UserMutation, query::ViewerQuery},
};

/// Everything that can be read.
#[derive(MergedObject, Default)]
pub struct Query(ViewerQuery, NodeQuery, RestaurantQuery, OrderQuery);

/// Everything that can be changed.
#[derive(MergedObject, Default)]
pub struct Mutation(
    OrderMutation,
    ApiTokenMutation,
    WebhookMutation,
    UserMutation,
    AddressMutation,
    MenuMutation,
    MenuImportMutation,
    MediaMutation,
    RestaurantMutation,
);

/// Everything that can be followed live.
#[derive(MergedSubscription, Default)]
pub struct Subscription(OrderSubscription, MenuSubscription);
