//! Restaurants keep their own menus: categories and items, created, changed, reordered, sold
//! out and deleted by the restaurant's owner and staff (and admins; API tokens need
//! `menu:write`). Each call is one transaction that also records a `menu.updated` webhook.
//! Deleting keeps history: items (and categories) are marked deleted, and past order lines keep
//! the name and price they were ordered with.

use chrono::{DateTime, Utc};
use entities::{menu_category, menu_item, restaurant};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, LockType},
};
use serde_json::json;

use super::{ErrorCode, InputError, ServiceResult};
use crate::{
    auth::{Scope, Viewer},
    db::begin_write,
    error::{AppError, AppResult},
    graphql::relay::{GlobalId, NodeKind},
    webhooks,
};

/// Longest category or item name.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest item description.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Highest price, in minor units (10,000.00).
pub const MAX_PRICE: i64 = 1_000_000;
/// Most items one availability call changes.
pub const MAX_BULK: usize = 100;

/// May `viewer` change `restaurant_id`'s menu? Its owner and staff, admins; tokens need
/// `menu:write`. Returns the restaurant; FORBIDDEN otherwise (menus are public, so there is
/// nothing to hide about the restaurant itself).
///
/// The restaurant's row stays locked until the transaction ends (on PostgreSQL; SQLite's
/// writer is alone anyway), so the changes to one restaurant's menu, its photos and its
/// settings run one at a time: what a writer reads after this call, no other changes before
/// it commits. Orders are not held up: their reference to the restaurant takes a lock this
/// one does not exclude.
pub(crate) async fn authorize(
    txn: &DatabaseTransaction,
    viewer: &Viewer,
    restaurant_id: i64,
) -> AppResult<Option<restaurant::Model>> {
    let user = viewer.require_user()?;
    viewer.require_scope(Scope::MenuWrite)?;
    let Some(restaurant) = restaurant::Entity::find_by_id(restaurant_id)
        .lock(LockType::NoKeyUpdate)
        .one(txn)
        .await?
    else {
        return Ok(None);
    };
    if viewer.is_admin() || viewer.is_staff_of(restaurant_id) || restaurant.owner_id == user.id {
        Ok(Some(restaurant))
    } else {
        Err(AppError::Forbidden)
    }
}

fn name(field: &str, value: &str) -> Result<String, InputError> {
    super::bounded_text(field, value, 1, MAX_NAME_CHARS)
}

/// Records that `restaurant_id`'s menu changed, for webhooks, in the change's transaction.
pub(crate) async fn changed(
    txn: &DatabaseTransaction,
    restaurant_id: i64,
    what: &str,
    categories: &[i64],
    items: &[i64],
    now: DateTime<Utc>,
) -> AppResult<()> {
    let ids = |kind: NodeKind, ids: &[i64]| -> Vec<String> {
        ids.iter().map(|id| GlobalId::encode(kind, *id).0).collect()
    };
    webhooks::enqueue(
        txn,
        webhooks::Event {
            kind: webhooks::EventType::MenuUpdated,
            restaurant_id,
            at: now,
            data: json!({
                "restaurantId": GlobalId::encode(NodeKind::Restaurant, restaurant_id).0,
                "change": what,
                "categoryIds": ids(NodeKind::MenuCategory, categories),
                "menuItemIds": ids(NodeKind::MenuItem, items),
            }),
        },
    )
    .await
}

fn missing(field: &str, what: &str) -> InputError {
    InputError::new(field, ErrorCode::NotFound, format!("no such {what}"))
}

/// A live category of the menu, found by id.
async fn live_category(
    txn: &DatabaseTransaction,
    id: i64,
) -> AppResult<Option<menu_category::Model>> {
    Ok(menu_category::Entity::find_by_id(id)
        .one(txn)
        .await?
        .filter(|category| category.deleted_at.is_none()))
}

/// A live item, found by id.
pub(crate) async fn live_item(
    txn: &DatabaseTransaction,
    id: i64,
) -> AppResult<Option<menu_item::Model>> {
    Ok(menu_item::Entity::find_by_id(id)
        .one(txn)
        .await?
        .filter(|item| item.deleted_at.is_none()))
}

/// The next position after the last of `restaurant_id`'s categories.
async fn next_category_position(txn: &DatabaseTransaction, restaurant_id: i64) -> AppResult<i32> {
    let last: Option<i32> = menu_category::Entity::find()
        .select_only()
        .column(menu_category::Column::Position)
        .filter(menu_category::Column::RestaurantId.eq(restaurant_id))
        .order_by_desc(menu_category::Column::Position)
        .limit(1)
        .into_tuple()
        .one(txn)
        .await?;
    Ok(last.map_or(0, |p| p + 1))
}

/// Adds a category at the end of the menu.
pub async fn create_category(
    db: &DatabaseConnection,
    viewer: &Viewer,
    restaurant_id: i64,
    category_name: &str,
    now: DateTime<Utc>,
) -> ServiceResult<menu_category::Model> {
    let category_name = match name("name", category_name) {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    let txn = begin_write(db).await?;
    if authorize(&txn, viewer, restaurant_id).await?.is_none() {
        return Ok(Err(missing("restaurantId", "restaurant")));
    }
    let category = menu_category::ActiveModel {
        restaurant_id: Set(restaurant_id),
        name: Set(category_name),
        position: Set(next_category_position(&txn, restaurant_id).await?),
        created_at: Set(now),
        deleted_at: Set(None),
        external_id: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    changed(
        &txn,
        restaurant_id,
        "category_created",
        &[category.id],
        &[],
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Ok(category))
}

/// Renames a category.
pub async fn rename_category(
    db: &DatabaseConnection,
    viewer: &Viewer,
    id: i64,
    new_name: &str,
    now: DateTime<Utc>,
) -> ServiceResult<menu_category::Model> {
    let new_name = match name("name", new_name) {
        Ok(n) => n,
        Err(e) => return Ok(Err(e)),
    };
    let txn = begin_write(db).await?;
    let Some(category) = live_category(&txn, id).await? else {
        return Ok(Err(missing("id", "category")));
    };
    authorize(&txn, viewer, category.restaurant_id).await?;
    let mut active: menu_category::ActiveModel = category.into();
    active.name = Set(new_name);
    let category = active.update(&txn).await?;
    changed(
        &txn,
        category.restaurant_id,
        "category_renamed",
        &[id],
        &[],
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Ok(category))
}

/// Whether `order` names each of the ids in `current` exactly once, and nothing else.
fn each_once(mut current: Vec<i64>, order: &[i64]) -> bool {
    let mut given = order.to_vec();
    current.sort_unstable();
    given.sort_unstable();
    current == given
}

/// Puts a restaurant's categories in the order given, which must name each live one once.
pub async fn reorder_categories(
    db: &DatabaseConnection,
    viewer: &Viewer,
    restaurant_id: i64,
    order: &[i64],
    now: DateTime<Utc>,
) -> ServiceResult<Vec<menu_category::Model>> {
    let txn = begin_write(db).await?;
    if authorize(&txn, viewer, restaurant_id).await?.is_none() {
        return Ok(Err(missing("restaurantId", "restaurant")));
    }
    let current: Vec<i64> = menu_category::Entity::find()
        .select_only()
        .column(menu_category::Column::Id)
        .filter(menu_category::Column::RestaurantId.eq(restaurant_id))
        .filter(menu_category::Column::DeletedAt.is_null())
        .into_tuple()
        .all(&txn)
        .await?;
    if !each_once(current, order) {
        return Ok(Err(InputError::new(
            "categoryIds",
            ErrorCode::Invalid,
            "name every category of the menu exactly once",
        )));
    }
    for (position, id) in order.iter().enumerate() {
        menu_category::Entity::update_many()
            .col_expr(
                menu_category::Column::Position,
                Expr::value(position as i32),
            )
            .filter(menu_category::Column::Id.eq(*id))
            .exec(&txn)
            .await?;
    }
    let categories = menu_category::Entity::find()
        .filter(menu_category::Column::RestaurantId.eq(restaurant_id))
        .filter(menu_category::Column::DeletedAt.is_null())
        .order_by_asc(menu_category::Column::Position)
        .all(&txn)
        .await?;
    changed(&txn, restaurant_id, "categories_reordered", order, &[], now).await?;
    txn.commit().await?;
    Ok(Ok(categories))
}

/// Deletes a category. One with items needs `move_items_to`, another category of the same
/// menu, which gets them (after its own); an empty one just goes.
pub async fn delete_category(
    db: &DatabaseConnection,
    viewer: &Viewer,
    id: i64,
    move_items_to: Option<i64>,
    now: DateTime<Utc>,
) -> ServiceResult<(i64, i64)> {
    let txn = begin_write(db).await?;
    let Some(category) = live_category(&txn, id).await? else {
        return Ok(Err(missing("id", "category")));
    };
    authorize(&txn, viewer, category.restaurant_id).await?;
    let items: Vec<i64> = menu_item::Entity::find()
        .select_only()
        .column(menu_item::Column::Id)
        .filter(menu_item::Column::CategoryId.eq(id))
        .filter(menu_item::Column::DeletedAt.is_null())
        .into_tuple()
        .all(&txn)
        .await?;
    if !items.is_empty() {
        let Some(target) = move_items_to else {
            return Ok(Err(InputError::new(
                "moveItemsTo",
                ErrorCode::Invalid,
                format!(
                    "the category has {} items; say which category gets them",
                    items.len()
                ),
            )));
        };
        let target = live_category(&txn, target)
            .await?
            .filter(|t| t.restaurant_id == category.restaurant_id && t.id != id);
        let Some(target) = target else {
            return Ok(Err(missing("moveItemsTo", "other category of this menu")));
        };
        let after: Option<i32> = menu_item::Entity::find()
            .select_only()
            .column(menu_item::Column::Position)
            .filter(menu_item::Column::CategoryId.eq(target.id))
            .order_by_desc(menu_item::Column::Position)
            .limit(1)
            .into_tuple()
            .one(&txn)
            .await?;
        menu_item::Entity::update_many()
            .col_expr(menu_item::Column::CategoryId, Expr::value(target.id))
            .col_expr(
                menu_item::Column::Position,
                Expr::col(menu_item::Column::Position).add(after.map_or(0, |p| p + 1)),
            )
            .col_expr(menu_item::Column::UpdatedAt, Expr::value(now))
            .filter(menu_item::Column::CategoryId.eq(id))
            .filter(menu_item::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
    }
    // A deleted category frees its external id for a new one.
    menu_category::Entity::update_many()
        .col_expr(menu_category::Column::DeletedAt, Expr::value(now))
        .col_expr(
            menu_category::Column::ExternalId,
            Expr::value(Option::<String>::None),
        )
        .filter(menu_category::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    changed(
        &txn,
        category.restaurant_id,
        "category_deleted",
        &[id],
        &items,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Ok((id, category.restaurant_id)))
}

/// The fields of an item, as given (`None`: unchanged, or needed on creation).
#[derive(Debug, Clone, Default)]
pub struct ItemFields {
    pub category_id: Option<i64>,
    pub name: Option<String>,
    pub description: Option<String>,
    /// A decimal amount in the restaurant's currency, e.g. `"12.50"`.
    pub price: Option<String>,
    pub dietary_tags: Option<Vec<&'static str>>,
    pub allergens: Option<Vec<&'static str>>,
    pub available: Option<bool>,
}

/// Checks and applies `fields` to `item` (of `restaurant`).
async fn apply(
    txn: &DatabaseTransaction,
    item: &mut menu_item::ActiveModel,
    restaurant: &restaurant::Model,
    fields: &ItemFields,
) -> AppResult<Result<(), InputError>> {
    if let Some(category_id) = fields.category_id {
        let category = live_category(txn, category_id)
            .await?
            .filter(|c| c.restaurant_id == restaurant.id);
        if category.is_none() {
            return Ok(Err(missing("categoryId", "category of this menu")));
        }
        item.category_id = Set(category_id);
    }
    if let Some(value) = &fields.name {
        match name("name", value) {
            Ok(value) => item.name = Set(value),
            Err(error) => return Ok(Err(error)),
        }
    }
    if let Some(description) = &fields.description {
        let description = description.trim();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Ok(Err(InputError::new(
                "description",
                ErrorCode::Invalid,
                format!("at most {MAX_DESCRIPTION_CHARS} characters"),
            )));
        }
        item.description = Set(description.to_owned());
    }
    if let Some(amount) = &fields.price {
        let price = crate::graphql::common::Money::parse_minor(amount.trim(), &restaurant.currency)
            .unwrap_or(0);
        if !(1..=MAX_PRICE).contains(&price) {
            return Ok(Err(InputError::new(
                "price",
                ErrorCode::Invalid,
                format!(
                    "a price above 0 and at most {} {}",
                    crate::graphql::common::Money::from_minor(MAX_PRICE, &restaurant.currency)
                        .amount,
                    restaurant.currency
                ),
            )));
        }
        item.price_amount = Set(price);
    }
    if let Some(tags) = &fields.dietary_tags {
        let mut tags = tags.clone();
        tags.sort_unstable();
        tags.dedup();
        item.dietary_tags = Set(json!(tags));
    }
    if let Some(allergens) = &fields.allergens {
        let mut allergens = allergens.clone();
        allergens.sort_unstable();
        allergens.dedup();
        item.allergens = Set(json!(allergens));
    }
    if let Some(available) = fields.available {
        item.is_available = Set(available);
    }
    Ok(Ok(()))
}

/// Adds an item at the end of its category, priced in the restaurant's currency.
pub async fn create_item(
    db: &DatabaseConnection,
    viewer: &Viewer,
    fields: &ItemFields,
    now: DateTime<Utc>,
) -> ServiceResult<menu_item::Model> {
    let (Some(category_id), Some(_), Some(_)) = (fields.category_id, &fields.name, &fields.price)
    else {
        let field = if fields.name.is_none() {
            "name"
        } else {
            "price"
        };
        return Ok(Err(InputError::new(field, ErrorCode::Invalid, "needed")));
    };
    let txn = begin_write(db).await?;
    let Some(category) = live_category(&txn, category_id).await? else {
        return Ok(Err(missing("categoryId", "category")));
    };
    let Some(restaurant) = authorize(&txn, viewer, category.restaurant_id).await? else {
        return Ok(Err(missing("categoryId", "category")));
    };
    // Again now that the menu is this writer's: the category may have been deleted meanwhile.
    if live_category(&txn, category_id).await?.is_none() {
        return Ok(Err(missing("categoryId", "category")));
    }
    let last: Option<i32> = menu_item::Entity::find()
        .select_only()
        .column(menu_item::Column::Position)
        .filter(menu_item::Column::CategoryId.eq(category_id))
        .order_by_desc(menu_item::Column::Position)
        .limit(1)
        .into_tuple()
        .one(&txn)
        .await?;
    let mut item = menu_item::ActiveModel {
        restaurant_id: Set(restaurant.id),
        currency: Set(restaurant.currency.clone()),
        description: Set(String::new()),
        is_available: Set(true),
        dietary_tags: Set(json!([])),
        allergens: Set(json!([])),
        image_url: Set(None),
        position: Set(last.map_or(0, |p| p + 1)),
        deleted_at: Set(None),
        external_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    if let Err(error) = apply(&txn, &mut item, &restaurant, fields).await? {
        return Ok(Err(error));
    }
    let item = item.insert(&txn).await?;
    changed(&txn, restaurant.id, "item_created", &[], &[item.id], now).await?;
    txn.commit().await?;
    Ok(Ok(item))
}

/// Changes an item; orders already placed keep what they were placed with.
pub async fn update_item(
    db: &DatabaseConnection,
    viewer: &Viewer,
    id: i64,
    fields: &ItemFields,
    now: DateTime<Utc>,
) -> ServiceResult<menu_item::Model> {
    let txn = begin_write(db).await?;
    let Some(found) = live_item(&txn, id).await? else {
        return Ok(Err(missing("id", "menu item")));
    };
    let Some(restaurant) = authorize(&txn, viewer, found.restaurant_id).await? else {
        return Ok(Err(missing("id", "menu item")));
    };
    let mut item: menu_item::ActiveModel = found.into();
    if let Err(error) = apply(&txn, &mut item, &restaurant, fields).await? {
        return Ok(Err(error));
    }
    item.updated_at = Set(now);
    let item = item.update(&txn).await?;
    changed(&txn, restaurant.id, "item_updated", &[], &[id], now).await?;
    txn.commit().await?;
    Ok(Ok(item))
}

/// Puts the items of a category in the order given, which must name each of its live items
/// once.
pub async fn reorder_items(
    db: &DatabaseConnection,
    viewer: &Viewer,
    category_id: i64,
    order: &[i64],
    now: DateTime<Utc>,
) -> ServiceResult<Vec<menu_item::Model>> {
    let txn = begin_write(db).await?;
    let Some(category) = live_category(&txn, category_id).await? else {
        return Ok(Err(missing("categoryId", "category")));
    };
    authorize(&txn, viewer, category.restaurant_id).await?;
    let live = || {
        menu_item::Entity::find()
            .filter(menu_item::Column::CategoryId.eq(category_id))
            .filter(menu_item::Column::DeletedAt.is_null())
    };
    let current: Vec<i64> = live()
        .select_only()
        .column(menu_item::Column::Id)
        .into_tuple()
        .all(&txn)
        .await?;
    if !each_once(current, order) {
        return Ok(Err(InputError::new(
            "menuItemIds",
            ErrorCode::Invalid,
            "name every item of the category exactly once",
        )));
    }
    for (position, id) in order.iter().enumerate() {
        menu_item::Entity::update_many()
            .col_expr(menu_item::Column::Position, Expr::value(position as i32))
            .col_expr(menu_item::Column::UpdatedAt, Expr::value(now))
            .filter(menu_item::Column::Id.eq(*id))
            .exec(&txn)
            .await?;
    }
    let items = live()
        .order_by_asc(menu_item::Column::Position)
        .all(&txn)
        .await?;
    changed(
        &txn,
        category.restaurant_id,
        "items_reordered",
        &[category_id],
        order,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(Ok(items))
}

/// Marks items available or sold out, all of one restaurant, in one call (at most 100).
pub async fn set_availability(
    db: &DatabaseConnection,
    viewer: &Viewer,
    ids: &[i64],
    available: bool,
    now: DateTime<Utc>,
) -> ServiceResult<Vec<menu_item::Model>> {
    if ids.is_empty() || ids.len() > MAX_BULK {
        return Ok(Err(InputError::new(
            "menuItemIds",
            ErrorCode::Invalid,
            format!("1 to {MAX_BULK} items"),
        )));
    }
    let txn = begin_write(db).await?;
    let items = menu_item::Entity::find()
        .filter(crate::db::one_of(
            menu_item::Column::Id,
            ids,
            txn.get_database_backend(),
        ))
        .filter(menu_item::Column::DeletedAt.is_null())
        .all(&txn)
        .await?;
    for (index, id) in ids.iter().enumerate() {
        if !items.iter().any(|item| item.id == *id) {
            return Ok(Err(InputError::in_list(
                "menuItemIds",
                index,
                "id",
                ErrorCode::NotFound,
                "no such menu item",
            )));
        }
    }
    let restaurant_id = items[0].restaurant_id;
    if items.iter().any(|item| item.restaurant_id != restaurant_id) {
        return Ok(Err(InputError::new(
            "menuItemIds",
            ErrorCode::Invalid,
            "the items must be of one restaurant",
        )));
    }
    authorize(&txn, viewer, restaurant_id).await?;
    menu_item::Entity::update_many()
        .col_expr(menu_item::Column::IsAvailable, Expr::value(available))
        .col_expr(menu_item::Column::UpdatedAt, Expr::value(now))
        .filter(crate::db::one_of(
            menu_item::Column::Id,
            ids,
            txn.get_database_backend(),
        ))
        .exec(&txn)
        .await?;
    let what = if available {
        "items_available"
    } else {
        "items_sold_out"
    };
    changed(&txn, restaurant_id, what, &[], ids, now).await?;
    let items = menu_item::Entity::find()
        .filter(crate::db::one_of(
            menu_item::Column::Id,
            ids,
            txn.get_database_backend(),
        ))
        .order_by_asc(menu_item::Column::Id)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(Ok(items))
}

/// Takes an item off the menu. It stays in the database for the orders that have it.
/// Returns its id and its restaurant's.
pub async fn delete_item(
    db: &DatabaseConnection,
    viewer: &Viewer,
    id: i64,
    now: DateTime<Utc>,
) -> ServiceResult<(i64, i64)> {
    let txn = begin_write(db).await?;
    let Some(item) = live_item(&txn, id).await? else {
        return Ok(Err(missing("id", "menu item")));
    };
    authorize(&txn, viewer, item.restaurant_id).await?;
    menu_item::Entity::update_many()
        .col_expr(menu_item::Column::DeletedAt, Expr::value(now))
        .col_expr(menu_item::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            menu_item::Column::ExternalId,
            Expr::value(Option::<String>::None),
        )
        .filter(menu_item::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    changed(&txn, item.restaurant_id, "item_deleted", &[], &[id], now).await?;
    txn.commit().await?;
    Ok(Ok((id, item.restaurant_id)))
}
