//! Loaders of whole menus, one statement for the categories and one for the items of any
//! number of restaurants.

use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use entities::{menu_category, menu_item};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    prelude::Json,
};

use crate::{
    error::{AppError, AppResult},
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

/// What the API shows of a menu item: every column but its bookkeeping (position and
/// timestamps), with the longer details only when the query asked for them.
#[derive(Debug)]
pub struct ItemRow {
    pub id: i64,
    pub restaurant_id: i64,
    pub category_id: i64,
    pub name: String,
    /// Price in minor units of `currency`.
    pub price_amount: i64,
    pub currency: String,
    pub is_available: bool,
    /// `None` when the statement that read the row left the details out.
    pub details: Option<Arc<ItemDetails>>,
}

/// The columns of a menu item that listings mostly leave out.
#[derive(Debug)]
pub struct ItemDetails {
    pub description: String,
    /// A JSON array of stored tags (`vegan`, `gluten_free`, ...).
    pub dietary_tags: Json,
    pub image_url: Option<String>,
}

impl From<&menu_item::Model> for ItemRow {
    fn from(item: &menu_item::Model) -> Self {
        Self {
            id: item.id,
            restaurant_id: item.restaurant_id,
            category_id: item.category_id,
            name: item.name.clone(),
            price_amount: item.price_amount,
            currency: item.currency.clone(),
            is_available: item.is_available,
            details: Some(Arc::new(item.into())),
        }
    }
}

impl From<&menu_item::Model> for ItemDetails {
    fn from(item: &menu_item::Model) -> Self {
        Self {
            description: item.description.clone(),
            dietary_tags: item.dietary_tags.clone(),
            image_url: item.image_url.clone(),
        }
    }
}

/// The menu items of one restaurant, with or without their details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ItemsOf {
    pub restaurant_id: i64,
    pub details: bool,
}

/// Menu items (not deleted) by restaurant id, by category id, then by position within the
/// category. Putting the categories themselves in menu order is left to the resolvers, which
/// have the categories: joining them here makes the database hash every category it has.
///
/// Only the columns asked for are read: a menu listing with names and prices is most of what
/// clients ask, and its items are the largest set of rows a query reads (decoding every
/// column of them was a fifth of the server's time in the benchmark's nested query).
pub struct ItemsByRestaurant(pub DatabaseConnection);

/// The columns every `ItemRow` has, in the order the statements select them (read by
/// position, not by name).
type Listed = (i64, i64, i64, String, i64, String, bool);
/// `Listed`, then the details.
type Detailed = (
    i64,
    i64,
    i64,
    String,
    i64,
    String,
    bool,
    String,
    Json,
    Option<String>,
);

impl Loader<ItemsOf> for ItemsByRestaurant {
    type Value = Arc<[Arc<ItemRow>]>;
    type Error = LoadError;

    async fn load(&self, keys: &[ItemsOf]) -> Result<HashMap<ItemsOf, Self::Value>, Self::Error> {
        let mut menus = HashMap::with_capacity(keys.len());
        // One statement per column set asked for; a query almost always asks for one.
        for details in [false, true] {
            let restaurants: Vec<i64> = keys
                .iter()
                .filter(|key| key.details == details)
                .map(|key| key.restaurant_id)
                .collect();
            if restaurants.is_empty() {
                continue;
            }
            let rows = self.read(&restaurants, details).await?;
            menus.extend(
                group_by(rows.into_iter().map(Arc::new), |row| row.restaurant_id)
                    .into_iter()
                    .map(|(restaurant_id, items)| {
                        (
                            ItemsOf {
                                restaurant_id,
                                details,
                            },
                            items,
                        )
                    }),
            );
        }
        Ok(menus)
    }
}

impl ItemsByRestaurant {
    async fn read(&self, restaurants: &[i64], details: bool) -> AppResult<Vec<ItemRow>> {
        use menu_item::Column;
        let query = menu_item::Entity::find()
            .select_only()
            .columns([
                Column::Id,
                Column::RestaurantId,
                Column::CategoryId,
                Column::Name,
                Column::PriceAmount,
                Column::Currency,
                Column::IsAvailable,
            ])
            .filter(Column::RestaurantId.is_in(restaurants.iter().copied()))
            .filter(Column::DeletedAt.is_null())
            .order_by_asc(Column::CategoryId)
            .order_by_asc(Column::Position)
            .order_by_asc(Column::Id);
        Ok(if details {
            query
                .columns([Column::Description, Column::DietaryTags, Column::ImageUrl])
                .into_tuple::<Detailed>()
                .all(&self.0)
                .await?
                .into_iter()
                .map(ItemRow::detailed)
                .collect()
        } else {
            query
                .into_tuple::<Listed>()
                .all(&self.0)
                .await?
                .into_iter()
                .map(ItemRow::listed)
                .collect()
        })
    }
}

impl ItemRow {
    fn listed(
        (id, restaurant_id, category_id, name, price_amount, currency, is_available): Listed,
    ) -> Self {
        Self {
            id,
            restaurant_id,
            category_id,
            name,
            price_amount,
            currency,
            is_available,
            details: None,
        }
    }

    fn detailed(
        (
            id,
            restaurant_id,
            category_id,
            name,
            price_amount,
            currency,
            is_available,
            description,
            dietary_tags,
            image_url,
        ): Detailed,
    ) -> Self {
        let listed = (
            id,
            restaurant_id,
            category_id,
            name,
            price_amount,
            currency,
            is_available,
        );
        let details = ItemDetails {
            description,
            dietary_tags,
            image_url,
        };
        Self {
            details: Some(Arc::new(details)),
            ..Self::listed(listed)
        }
    }
}
