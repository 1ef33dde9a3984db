//! What hangs off an order: its lines, events, delivery and review.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use entities::{delivery, order_event, order_item, review};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::{
    error::AppError,
    graphql::loaders::{LoadError, group_by},
};

/// Lines of orders, by order id, in the order they were given.
pub struct ItemsByOrder(pub DatabaseConnection);

impl Loader<i64> for ItemsByOrder {
    type Value = Arc<[order_item::Model]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = order_item::Entity::find()
            .filter(order_item::Column::OrderId.is_in(keys.iter().copied()))
            .order_by_asc(order_item::Column::Id)
            .all(&self.0)
            .await
            .map_err(AppError::from)?;
        Ok(group_by(rows, |row| row.order_id))
    }
}

/// Status changes of orders, by order id, oldest first.
pub struct EventsByOrder(pub DatabaseConnection);

impl Loader<i64> for EventsByOrder {
    type Value = Arc<[order_event::Model]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = order_event::Entity::find()
            .filter(order_event::Column::OrderId.is_in(keys.iter().copied()))
            .order_by_asc(order_event::Column::Id)
            .all(&self.0)
            .await
            .map_err(AppError::from)?;
        Ok(group_by(rows, |row| row.order_id))
    }
}

/// The delivery of orders, by order id.
pub struct DeliveryByOrder(pub DatabaseConnection);

impl Loader<i64> for DeliveryByOrder {
    type Value = Arc<delivery::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = delivery::Entity::find()
            .filter(delivery::Column::OrderId.is_in(keys.iter().copied()))
            .all(&self.0)
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.order_id, Arc::new(row)))
            .collect())
    }
}

/// The review of orders, by order id.
pub struct ReviewByOrder(pub DatabaseConnection);

impl Loader<i64> for ReviewByOrder {
    type Value = Arc<review::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = review::Entity::find()
            .filter(review::Column::OrderId.is_in(keys.iter().copied()))
            .all(&self.0)
            .await
            .map_err(AppError::from)?;
        Ok(rows
            .into_iter()
            .map(|row| (row.order_id, Arc::new(row)))
            .collect())
    }
}
