//! Menu management: categories and items, for a restaurant's owner and staff (and admins;
//! API tokens need `menu:write`).

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use entities::{menu_category, menu_item};
use sea_orm::DatabaseConnection;

use super::types::{DietaryTag, MenuCategory, MenuItem};
use crate::{
    auth::guards::viewer,
    graphql::{
        payloads::UserError,
        relay::{GlobalId, NodeKind},
    },
    services::{
        InputError,
        menus::{self as service, ItemFields},
    },
};

/// A new category, at the end of the menu.
#[derive(InputObject)]
pub struct CreateMenuCategoryInput {
    /// The restaurant.
    pub restaurant_id: ID,
    /// 1 to 100 characters.
    pub name: String,
}

/// A category's new name.
#[derive(InputObject)]
pub struct RenameMenuCategoryInput {
    /// The category.
    pub id: ID,
    /// 1 to 100 characters.
    pub name: String,
}

/// The menu's categories in their new order.
#[derive(InputObject)]
pub struct ReorderMenuCategoriesInput {
    /// The restaurant.
    pub restaurant_id: ID,
    /// Every category of the menu, once each, first one first.
    pub category_ids: Vec<ID>,
}

/// Which category to delete.
#[derive(InputObject)]
pub struct DeleteMenuCategoryInput {
    /// The category.
    pub id: ID,
    /// Another category of the same menu that gets its items (needed when it has any).
    pub move_items_to: Option<ID>,
}

/// A new item, at the end of its category.
#[derive(InputObject)]
pub struct CreateMenuItemInput {
    /// Its category.
    pub category_id: ID,
    /// 1 to 100 characters.
    pub name: String,
    /// At most 1000 characters.
    pub description: Option<String>,
    /// A decimal amount in the restaurant's currency, e.g. `"12.50"`: above 0, at most
    /// 10000.00.
    pub price: String,
    /// Dietary tags.
    pub dietary_tags: Option<Vec<DietaryTag>>,
    /// Whether it can be ordered (default true).
    pub available: Option<bool>,
}

/// Changes to an item; omitted fields stay as they are. Orders already placed keep the name
/// and price they were placed with.
#[derive(InputObject)]
pub struct UpdateMenuItemInput {
    /// The item.
    pub id: ID,
    /// Move it to another category of the same menu.
    pub category_id: Option<ID>,
    /// 1 to 100 characters.
    pub name: Option<String>,
    /// At most 1000 characters.
    pub description: Option<String>,
    /// A decimal amount in the restaurant's currency.
    pub price: Option<String>,
    /// Dietary tags (replacing the old ones).
    pub dietary_tags: Option<Vec<DietaryTag>>,
    /// Whether it can be ordered.
    pub available: Option<bool>,
}

/// Items to mark available or sold out, all of one restaurant.
#[derive(InputObject)]
pub struct SetMenuItemsAvailabilityInput {
    /// 1 to 100 items.
    pub menu_item_ids: Vec<ID>,
    /// True: can be ordered; false: sold out.
    pub available: bool,
}

/// Which item to delete.
#[derive(InputObject)]
pub struct DeleteMenuItemInput {
    /// The item.
    pub id: ID,
}

/// The category after the change.
#[derive(SimpleObject)]
pub struct MenuCategoryPayload {
    /// The category; null on a user error.
    pub category: Option<MenuCategory>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// The menu's categories after the change.
#[derive(SimpleObject)]
pub struct MenuCategoriesPayload {
    /// The categories in menu order; null on a user error.
    pub categories: Option<Vec<MenuCategory>>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// The item after the change.
#[derive(SimpleObject)]
pub struct MenuItemPayload {
    /// The item; null on a user error.
    pub menu_item: Option<MenuItem>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// The items after the change.
#[derive(SimpleObject)]
pub struct MenuItemsPayload {
    /// The items; null on a user error.
    pub menu_items: Option<Vec<MenuItem>>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// What was deleted.
#[derive(SimpleObject)]
pub struct DeleteMenuEntryPayload {
    /// ID of the deleted category or item; null on a user error.
    pub deleted_id: Option<ID>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

fn category(model: menu_category::Model) -> MenuCategory {
    MenuCategory(Arc::new(model))
}

fn item(model: &menu_item::Model) -> MenuItem {
    MenuItem(Arc::new(model.into()))
}

fn category_payload(result: Result<menu_category::Model, InputError>) -> MenuCategoryPayload {
    match result {
        Ok(model) => MenuCategoryPayload {
            category: Some(category(model)),
            user_errors: Vec::new(),
        },
        Err(error) => MenuCategoryPayload {
            category: None,
            user_errors: vec![error.into()],
        },
    }
}

fn item_payload(result: Result<menu_item::Model, InputError>) -> MenuItemPayload {
    match result {
        Ok(model) => MenuItemPayload {
            menu_item: Some(item(&model)),
            user_errors: Vec::new(),
        },
        Err(error) => MenuItemPayload {
            menu_item: None,
            user_errors: vec![error.into()],
        },
    }
}

fn deleted(kind: NodeKind, result: Result<i64, InputError>) -> DeleteMenuEntryPayload {
    match result {
        Ok(id) => DeleteMenuEntryPayload {
            deleted_id: Some(GlobalId::encode(kind, id)),
            user_errors: Vec::new(),
        },
        Err(error) => DeleteMenuEntryPayload {
            deleted_id: None,
            user_errors: vec![error.into()],
        },
    }
}

fn tags(tags: Option<Vec<DietaryTag>>) -> Option<Vec<&'static str>> {
    tags.map(|tags| tags.into_iter().map(DietaryTag::stored).collect())
}

/// Changing menus: a restaurant's owner and staff, admins; API tokens need `menu:write`.
/// Others get `FORBIDDEN`. Every change is visible to readers at once and sends a
/// `menu.updated` webhook.
#[derive(Default)]
pub struct MenuMutation;

#[Object]
impl MenuMutation {
    /// Adds a category at the end of a restaurant's menu.
    async fn create_menu_category(
        &self,
        ctx: &Context<'_>,
        input: CreateMenuCategoryInput,
    ) -> Result<MenuCategoryPayload> {
        let restaurant = GlobalId::decode_as(&input.restaurant_id, NodeKind::Restaurant)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result =
            service::create_category(db, viewer(ctx)?, restaurant, &input.name, Utc::now()).await?;
        Ok(category_payload(result))
    }

    /// Renames a category.
    async fn rename_menu_category(
        &self,
        ctx: &Context<'_>,
        input: RenameMenuCategoryInput,
    ) -> Result<MenuCategoryPayload> {
        let id = GlobalId::decode_as(&input.id, NodeKind::MenuCategory)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result =
            service::rename_category(db, viewer(ctx)?, id, &input.name, Utc::now()).await?;
        Ok(category_payload(result))
    }

    /// Puts a menu's categories in a new order.
    async fn reorder_menu_categories(
        &self,
        ctx: &Context<'_>,
        input: ReorderMenuCategoriesInput,
    ) -> Result<MenuCategoriesPayload> {
        let restaurant = GlobalId::decode_as(&input.restaurant_id, NodeKind::Restaurant)?;
        let order = input
            .category_ids
            .iter()
            .map(|id| GlobalId::decode_as(id, NodeKind::MenuCategory))
            .collect::<Result<Vec<_>, _>>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(
            match service::reorder_categories(db, viewer(ctx)?, restaurant, &order, Utc::now())
                .await?
            {
                Ok(categories) => MenuCategoriesPayload {
                    categories: Some(categories.into_iter().map(category).collect()),
                    user_errors: Vec::new(),
                },
                Err(error) => MenuCategoriesPayload {
                    categories: None,
                    user_errors: vec![error.into()],
                },
            },
        )
    }

    /// Deletes a category; its items go to `moveItemsTo`.
    async fn delete_menu_category(
        &self,
        ctx: &Context<'_>,
        input: DeleteMenuCategoryInput,
    ) -> Result<DeleteMenuEntryPayload> {
        let id = GlobalId::decode_as(&input.id, NodeKind::MenuCategory)?;
        let target = input
            .move_items_to
            .as_ref()
            .map(|id| GlobalId::decode_as(id, NodeKind::MenuCategory))
            .transpose()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::delete_category(db, viewer(ctx)?, id, target, Utc::now()).await?;
        Ok(deleted(NodeKind::MenuCategory, result))
    }

    /// Adds an item at the end of a category.
    async fn create_menu_item(
        &self,
        ctx: &Context<'_>,
        input: CreateMenuItemInput,
    ) -> Result<MenuItemPayload> {
        let fields = ItemFields {
            category_id: Some(GlobalId::decode_as(
                &input.category_id,
                NodeKind::MenuCategory,
            )?),
            name: Some(input.name),
            description: input.description,
            price: Some(input.price),
            dietary_tags: tags(input.dietary_tags),
            available: input.available,
        };
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::create_item(db, viewer(ctx)?, &fields, Utc::now()).await?;
        Ok(item_payload(result))
    }

    /// Changes an item.
    async fn update_menu_item(
        &self,
        ctx: &Context<'_>,
        input: UpdateMenuItemInput,
    ) -> Result<MenuItemPayload> {
        let id = GlobalId::decode_as(&input.id, NodeKind::MenuItem)?;
        let fields = ItemFields {
            category_id: input
                .category_id
                .as_ref()
                .map(|id| GlobalId::decode_as(id, NodeKind::MenuCategory))
                .transpose()?,
            name: input.name,
            description: input.description,
            price: input.price,
            dietary_tags: tags(input.dietary_tags),
            available: input.available,
        };
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::update_item(db, viewer(ctx)?, id, &fields, Utc::now()).await?;
        Ok(item_payload(result))
    }

    /// Marks up to 100 items of one restaurant available or sold out at once (the kitchen
    /// running out of things on a busy night).
    async fn set_menu_items_availability(
        &self,
        ctx: &Context<'_>,
        input: SetMenuItemsAvailabilityInput,
    ) -> Result<MenuItemsPayload> {
        let ids = input
            .menu_item_ids
            .iter()
            .map(|id| GlobalId::decode_as(id, NodeKind::MenuItem))
            .collect::<Result<Vec<_>, _>>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(
            match service::set_availability(db, viewer(ctx)?, &ids, input.available, Utc::now())
                .await?
            {
                Ok(items) => MenuItemsPayload {
                    menu_items: Some(items.iter().map(item).collect()),
                    user_errors: Vec::new(),
                },
                Err(error) => MenuItemsPayload {
                    menu_items: None,
                    user_errors: vec![error.into()],
                },
            },
        )
    }

    /// Takes an item off the menu; past orders keep its name and price.
    async fn delete_menu_item(
        &self,
        ctx: &Context<'_>,
        input: DeleteMenuItemInput,
    ) -> Result<DeleteMenuEntryPayload> {
        let id = GlobalId::decode_as(&input.id, NodeKind::MenuItem)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::delete_item(db, viewer(ctx)?, id, Utc::now()).await?;
        Ok(deleted(NodeKind::MenuItem, result))
    }
}
