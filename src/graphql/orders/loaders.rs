//! What hangs off an order: its lines and events (many per order, oldest first), its delivery
//! and its review (at most one each).

use std::{collections::HashMap, marker::PhantomData, sync::Arc};

use async_graphql::dataloader::Loader;
use entities::{delivery, order_event, order_item, review};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::{
    error::AppError,
    graphql::loaders::{LoadError, group_by},
};

/// A table whose rows belong to an order.
pub trait OfOrder: EntityTrait<Model: Sync> {
    /// The column holding the order id.
    const ORDER_ID: Self::Column;
    /// The column rows are listed by, oldest first.
    const ORDER_BY: Self::Column;
    /// The order a row belongs to.
    fn order_id(row: &Self::Model) -> i64;
}

macro_rules! of_order {
    ($($entity:ident),*) => {$(
        impl OfOrder for $entity::Entity {
            const ORDER_ID: Self::Column = $entity::Column::OrderId;
            const ORDER_BY: Self::Column = $entity::Column::Id;
            fn order_id(row: &Self::Model) -> i64 {
                row.order_id
            }
        }
    )*};
}

of_order!(order_item, order_event, delivery, review);

async fn rows_of<E: OfOrder>(
    db: &DatabaseConnection,
    keys: &[i64],
) -> Result<Vec<E::Model>, LoadError> {
    Ok(E::find()
        .filter(E::ORDER_ID.is_in(keys.iter().copied()))
        .order_by_asc(E::ORDER_BY)
        .all(db)
        .await
        .map_err(AppError::from)?)
}

/// All rows of `E` of each order, oldest first (lines, events).
pub struct ManyByOrder<E>(DatabaseConnection, PhantomData<fn() -> E>);

impl<E> ManyByOrder<E> {
    pub fn new(db: DatabaseConnection) -> Self {
        Self(db, PhantomData)
    }
}

impl<E: OfOrder> Loader<i64> for ManyByOrder<E> {
    type Value = Arc<[E::Model]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        Ok(group_by(rows_of::<E>(&self.0, keys).await?, E::order_id))
    }
}

/// The one row of `E` of each order, if any (delivery, review).
pub struct OneByOrder<E>(DatabaseConnection, PhantomData<fn() -> E>);

impl<E> OneByOrder<E> {
    pub fn new(db: DatabaseConnection) -> Self {
        Self(db, PhantomData)
    }
}

impl<E: OfOrder> Loader<i64> for OneByOrder<E> {
    type Value = Arc<E::Model>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        Ok(rows_of::<E>(&self.0, keys)
            .await?
            .into_iter()
            .map(|row| (E::order_id(&row), Arc::new(row)))
            .collect())
    }
}
