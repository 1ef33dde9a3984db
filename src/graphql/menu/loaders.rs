//! Loaders of whole menus, one statement for the categories and one for the items of any
//! number of restaurants.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use entities::{menu_category, menu_item};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};

use crate::{
    error::AppError,
    graphql::loaders::{LoadError, group_by},
};

/// Menu categories by restaurant id, in menu order.
pub struct CategoriesByRestaurant(pub DatabaseConnection);

impl Loader<i64> for CategoriesByRestaurant {
    type Value = Arc<[Arc<menu_category::Model>]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = menu_category::Entity::find()
            .filter(menu_category::Column::RestaurantId.is_in(keys.iter().copied()))
            .order_by_asc(menu_category::Column::Position)
            .order_by_asc(menu_category::Column::Id)
            .all(&self.0)
            .await
            .map_err(AppError::from)?;
        Ok(group_by(rows.into_iter().map(Arc::new), |row| {
            row.restaurant_id
        }))
    }
}

/// Menu items (not deleted) by restaurant id, by category id, then by position within the
/// category. Putting the categories themselves in menu order is left to the resolvers, which
/// have the categories: joining them here makes the database hash every category it has.
pub struct ItemsByRestaurant(pub DatabaseConnection);

impl Loader<i64> for ItemsByRestaurant {
    type Value = Arc<[Arc<menu_item::Model>]>;
    type Error = LoadError;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, Self::Value>, Self::Error> {
        let rows = menu_item::Entity::find()
            .filter(menu_item::Column::RestaurantId.is_in(keys.iter().copied()))
            .filter(menu_item::Column::DeletedAt.is_null())
            .order_by_asc(menu_item::Column::CategoryId)
            .order_by_asc(menu_item::Column::Position)
            .order_by_asc(menu_item::Column::Id)
            .all(&self.0)
            .await
            .map_err(AppError::from)?;
        Ok(group_by(rows.into_iter().map(Arc::new), |row| {
            row.restaurant_id
        }))
    }
}
