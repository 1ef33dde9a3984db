//! Menu management: categories and items, for a restaurant's owner and staff (and admins;
//! API tokens need `menu:write`).

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use entities::{menu_category, menu_item};
use sea_orm::DatabaseConnection;

use super::types::{Allergen, DietaryTag, MenuCategory, MenuItem};
use crate::{
    auth::guards::viewer,
    graphql::{
        payloads::UserError,
        relay::{GlobalId, NodeKind},
    },
    services::{
        InputError,
        menu_options::{self, GroupSpec, OptionSpec},
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
    /// Allergens it contains.
    pub allergens: Option<Vec<Allergen>>,
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
    /// Allergens it contains (replacing the old ones).
    pub allergens: Option<Vec<Allergen>>,
    /// Whether it can be ordered.
    pub available: Option<bool>,
}

/// A category's items in their new order.
#[derive(InputObject)]
pub struct ReorderMenuItemsInput {
    /// The category.
    pub category_id: ID,
    /// Every item of the category, once each, first one first.
    pub menu_item_ids: Vec<ID>,
}

/// Items to mark available or sold out, all of one restaurant.
#[derive(InputObject)]
pub struct SetMenuItemsAvailabilityInput {
    /// 1 to 100 items.
    pub menu_item_ids: Vec<ID>,
    /// True: can be ordered; false: sold out.
    pub available: bool,
}

/// One option of a group, as `setMenuItemOptions` takes it.
#[derive(InputObject)]
pub struct MenuOptionInput {
    /// The option to keep (and change); omit for a new one.
    pub id: Option<ID>,
    /// 1 to 100 characters.
    pub name: String,
    /// What it adds to the item's price, a decimal amount in the restaurant's currency from
    /// `"0"` to `"10000.00"` (default `"0"`).
    #[graphql(default_with = "String::from(\"0\")")]
    pub price_delta: String,
    /// Whether it can be chosen (default true).
    #[graphql(default = true)]
    pub available: bool,
}

/// One option group, as `setMenuItemOptions` takes it.
#[derive(InputObject)]
pub struct MenuOptionGroupInput {
    /// The group to keep (and change); omit for a new one.
    pub id: Option<ID>,
    /// 1 to 100 characters, e.g. "Size".
    pub name: String,
    /// Fewest options a line must choose (0: optional). Default 0.
    #[graphql(default)]
    pub min_choices: i32,
    /// Most options a line may choose, from `max(1, minChoices)` to the number of options.
    pub max_choices: i32,
    /// 1 to 50 options, in menu order.
    pub options: Vec<MenuOptionInput>,
}

/// An item's option groups, all of them, in menu order.
#[derive(InputObject)]
pub struct SetMenuItemOptionsInput {
    /// The item.
    pub menu_item_id: ID,
    /// Up to 20 groups. Groups and options given with their `id` are kept and changed; without
    /// one they are new; the item's groups and options left out are removed (past orders keep
    /// what they chose).
    pub option_groups: Vec<MenuOptionGroupInput>,
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

async fn category_payload(
    ctx: &Context<'_>,
    result: Result<menu_category::Model, InputError>,
) -> MenuCategoryPayload {
    if let Ok(model) = &result {
        announce(ctx, model.restaurant_id).await;
    }
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

async fn item_payload(
    ctx: &Context<'_>,
    result: Result<menu_item::Model, InputError>,
) -> MenuItemPayload {
    if let Ok(model) = &result {
        announce(ctx, model.restaurant_id).await;
    }
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

async fn items_payload(
    ctx: &Context<'_>,
    result: Result<Vec<menu_item::Model>, InputError>,
) -> MenuItemsPayload {
    if let Some(first) = result.as_ref().ok().and_then(|items| items.first()) {
        announce(ctx, first.restaurant_id).await;
    }
    match result {
        Ok(items) => MenuItemsPayload {
            menu_items: Some(items.iter().map(item).collect()),
            user_errors: Vec::new(),
        },
        Err(error) => MenuItemsPayload {
            menu_items: None,
            user_errors: vec![error.into()],
        },
    }
}

async fn deleted(
    ctx: &Context<'_>,
    kind: NodeKind,
    result: Result<(i64, i64), InputError>,
) -> DeleteMenuEntryPayload {
    match result {
        Ok((id, restaurant_id)) => DeleteMenuEntryPayload {
            deleted_id: {
                announce(ctx, restaurant_id).await;
                Some(GlobalId::encode(kind, id))
            },
            user_errors: Vec::new(),
        },
        Err(error) => DeleteMenuEntryPayload {
            deleted_id: None,
            user_errors: vec![error.into()],
        },
    }
}

/// Tells live subscribers (`menuUpdated`), on every replica, that `restaurant_id`'s menu
/// changed; called after the change committed.
pub(crate) async fn announce(ctx: &Context<'_>, restaurant_id: i64) {
    if let Ok(bus) = ctx.data::<crate::events::EventBus>() {
        bus.menu_changed(restaurant_id).await;
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
        Ok(category_payload(ctx, result).await)
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
        Ok(category_payload(ctx, result).await)
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
                    categories: {
                        announce(ctx, restaurant).await;
                        Some(categories.into_iter().map(category).collect())
                    },
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
        Ok(deleted(ctx, NodeKind::MenuCategory, result).await)
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
            allergens: input
                .allergens
                .map(|list| list.into_iter().map(Allergen::stored).collect()),
            available: input.available,
        };
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::create_item(db, viewer(ctx)?, &fields, Utc::now()).await?;
        Ok(item_payload(ctx, result).await)
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
            allergens: input
                .allergens
                .map(|list| list.into_iter().map(Allergen::stored).collect()),
            available: input.available,
        };
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::update_item(db, viewer(ctx)?, id, &fields, Utc::now()).await?;
        Ok(item_payload(ctx, result).await)
    }

    /// Puts a category's items in a new order.
    async fn reorder_menu_items(
        &self,
        ctx: &Context<'_>,
        input: ReorderMenuItemsInput,
    ) -> Result<MenuItemsPayload> {
        let category = GlobalId::decode_as(&input.category_id, NodeKind::MenuCategory)?;
        let ids = input
            .menu_item_ids
            .iter()
            .map(|id| GlobalId::decode_as(id, NodeKind::MenuItem))
            .collect::<Result<Vec<_>, _>>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::reorder_items(db, viewer(ctx)?, category, &ids, Utc::now()).await?;
        Ok(items_payload(ctx, result).await)
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
        let result =
            service::set_availability(db, viewer(ctx)?, &ids, input.available, Utc::now()).await?;
        Ok(items_payload(ctx, result).await)
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
        Ok(deleted(ctx, NodeKind::MenuItem, result).await)
    }

    /// Sets an item's option groups ("Size", "Extras") and their options, all at once, in
    /// the order given. Orders already placed keep the options they were placed with. A
    /// refusal changes nothing and lists every problem found in the groups given, each at its
    /// field (more than 20 groups, or an id that is not one of the item's, is said alone).
    async fn set_menu_item_options(
        &self,
        ctx: &Context<'_>,
        input: SetMenuItemOptionsInput,
    ) -> Result<MenuItemPayload> {
        let item_id = GlobalId::decode_as(&input.menu_item_id, NodeKind::MenuItem)?;
        let decode = |id: Option<&ID>, kind| id.map(|id| GlobalId::decode_as(id, kind)).transpose();
        let groups = input
            .option_groups
            .iter()
            .map(|group| {
                Ok(GroupSpec {
                    id: decode(group.id.as_ref(), NodeKind::MenuOptionGroup)?,
                    external_id: None,
                    name: group.name.clone(),
                    min_choices: group.min_choices,
                    max_choices: group.max_choices,
                    options: group
                        .options
                        .iter()
                        .map(|option| {
                            Ok(OptionSpec {
                                id: decode(option.id.as_ref(), NodeKind::MenuOption)?,
                                external_id: None,
                                name: option.name.clone(),
                                price_delta: option.price_delta.clone(),
                                available: option.available,
                            })
                        })
                        .collect::<Result<_>>()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result =
            menu_options::set_item_options(db, viewer(ctx)?, item_id, &groups, Utc::now()).await?;
        Ok(match result {
            Ok((item, _)) => item_payload(ctx, Ok(item)).await,
            Err(errors) => MenuItemPayload {
                menu_item: None,
                user_errors: errors.into_iter().map(UserError::from).collect(),
            },
        })
    }
}
