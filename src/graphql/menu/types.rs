//! `Menu`, `MenuCategory` and `MenuItem`.

use std::{collections::HashMap, sync::Arc};

use async_graphql::{Context, Enum, ID, Object, Result};
use entities::menu_category;

use crate::{
    error::AppError,
    graphql::{
        common::Money,
        loaders::Loaders,
        menu::loaders::{ItemDetails, ItemRow, ItemsOf},
        relay::{GlobalId, NodeKind},
        restaurants::types::Restaurant,
    },
};

/// How many entries complexity counts for a menu's lists, whose length the client does not
/// choose: a list costs its estimated length times its selection, so that cost follows the
/// work and the size of the response (the demo's menus: 5 categories of 6 items).
const ESTIMATED_CATEGORIES: usize = 5;
const ESTIMATED_ITEMS_PER_CATEGORY: usize = 6;
const ESTIMATED_ITEMS: usize = ESTIMATED_CATEGORIES * ESTIMATED_ITEMS_PER_CATEGORY;

/// The complexity of a list field estimated to hold `length` entries of cost `child` each.
fn list_cost(length: usize, child: usize) -> usize {
    length.saturating_mul(child).saturating_add(1)
}

/// A restaurant's menu.
pub struct Menu {
    pub restaurant_id: i64,
}

/// A restaurant's menu.
#[Object]
impl Menu {
    /// Sections of the menu, in the order the restaurant chose.
    #[graphql(complexity = "list_cost(ESTIMATED_CATEGORIES, child_complexity)")]
    async fn categories(&self, ctx: &Context<'_>) -> Result<Vec<MenuCategory>> {
        let categories = ctx
            .data::<Loaders>()?
            .categories_by_restaurant
            .load_one(self.restaurant_id)
            .await?
            .unwrap_or_default();
        Ok(categories.iter().cloned().map(MenuCategory).collect())
    }

    /// Every item of the menu, category by category, in menu order.
    #[graphql(complexity = "list_cost(ESTIMATED_ITEMS, child_complexity)")]
    async fn items(&self, ctx: &Context<'_>) -> Result<Vec<MenuItem>> {
        let loaders = ctx.data::<Loaders>()?;
        // Asked for together, so both join the batches of the same turn.
        let (categories, items) = futures_util::future::try_join(
            loaders
                .categories_by_restaurant
                .load_one(self.restaurant_id),
            loaders
                .items_by_restaurant
                .load_one(items_of(ctx, self.restaurant_id)),
        )
        .await?;
        let items = items.unwrap_or_default();
        // Items come grouped by category id; a stable sort puts the groups in menu order.
        let rank: HashMap<i64, usize> = categories
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(rank, category)| (category.id, rank))
            .collect();
        let mut ordered: Vec<MenuItem> = items.iter().cloned().map(MenuItem).collect();
        ordered.sort_by_key(|item| rank.get(&item.0.category_id).copied());
        Ok(ordered)
    }
}

/// A section of a menu, e.g. "Starters".
#[derive(Clone)]
pub struct MenuCategory(pub Arc<menu_category::Model>);

/// A section of a menu, e.g. "Starters".
#[Object]
impl MenuCategory {
    /// Global ID of the category.
    pub async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::MenuCategory, self.0.id)
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// Place of the category in the menu, smallest first.
    async fn position(&self) -> i32 {
        self.0.position
    }

    /// Items of this category, in menu order.
    #[graphql(complexity = "list_cost(ESTIMATED_ITEMS_PER_CATEGORY, child_complexity)")]
    async fn items(&self, ctx: &Context<'_>) -> Result<Vec<MenuItem>> {
        let items = ctx
            .data::<Loaders>()?
            .items_by_restaurant
            .load_one(items_of(ctx, self.0.restaurant_id))
            .await?
            .unwrap_or_default();
        Ok(items
            .iter()
            .filter(|item| item.category_id == self.0.id)
            .cloned()
            .map(MenuItem)
            .collect())
    }

    /// The restaurant whose menu this is.
    async fn restaurant(&self, ctx: &Context<'_>) -> Result<Restaurant> {
        load_restaurant(ctx, self.0.restaurant_id).await
    }
}

/// A dietary property of a dish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum DietaryTag {
    /// No meat or fish.
    Vegetarian,
    /// No animal products.
    Vegan,
    /// No gluten-containing ingredients.
    GlutenFree,
    /// No milk products.
    DairyFree,
    /// No nuts.
    NutFree,
    /// Prepared according to halal rules.
    Halal,
    /// Prepared according to kosher rules.
    Kosher,
    /// Hot.
    Spicy,
}

impl DietaryTag {
    /// Reads a stored tag (`gluten_free`); unknown tags are skipped by callers.
    pub fn from_stored(tag: &str) -> Option<Self> {
        Some(match tag {
            "vegetarian" => Self::Vegetarian,
            "vegan" => Self::Vegan,
            "gluten_free" => Self::GlutenFree,
            "dairy_free" => Self::DairyFree,
            "nut_free" => Self::NutFree,
            "halal" => Self::Halal,
            "kosher" => Self::Kosher,
            "spicy" => Self::Spicy,
            _ => return None,
        })
    }

    /// The stored form of the tag.
    pub fn stored(self) -> &'static str {
        match self {
            Self::Vegetarian => "vegetarian",
            Self::Vegan => "vegan",
            Self::GlutenFree => "gluten_free",
            Self::DairyFree => "dairy_free",
            Self::NutFree => "nut_free",
            Self::Halal => "halal",
            Self::Kosher => "kosher",
            Self::Spicy => "spicy",
        }
    }
}

/// An allergen a dish contains: the fourteen the EU requires restaurants to declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum Allergen {
    /// Cereals containing gluten.
    Gluten,
    /// Crustaceans.
    Crustaceans,
    /// Eggs.
    Eggs,
    /// Fish.
    Fish,
    /// Peanuts.
    Peanuts,
    /// Soybeans.
    Soybeans,
    /// Milk, lactose included.
    Milk,
    /// Tree nuts.
    Nuts,
    /// Celery.
    Celery,
    /// Mustard.
    Mustard,
    /// Sesame seeds.
    Sesame,
    /// Sulphur dioxide and sulphites.
    Sulphites,
    /// Lupin.
    Lupin,
    /// Molluscs.
    Molluscs,
}

impl Allergen {
    const ALL: [(Self, &'static str); 14] = [
        (Self::Gluten, "gluten"),
        (Self::Crustaceans, "crustaceans"),
        (Self::Eggs, "eggs"),
        (Self::Fish, "fish"),
        (Self::Peanuts, "peanuts"),
        (Self::Soybeans, "soybeans"),
        (Self::Milk, "milk"),
        (Self::Nuts, "nuts"),
        (Self::Celery, "celery"),
        (Self::Mustard, "mustard"),
        (Self::Sesame, "sesame"),
        (Self::Sulphites, "sulphites"),
        (Self::Lupin, "lupin"),
        (Self::Molluscs, "molluscs"),
    ];

    /// Reads a stored allergen; unknown ones are skipped by callers.
    pub fn from_stored(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, stored)| *stored == name)
            .map(|(allergen, _)| *allergen)
    }

    /// The stored form.
    pub fn stored(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(allergen, _)| *allergen == self)
            .map_or("", |(_, stored)| stored)
    }
}

/// The items of `restaurant_id`, with their details when the field resolving in `ctx` (a
/// list of items) selects one of them, anywhere in its selection set.
fn items_of(ctx: &Context<'_>, restaurant_id: i64) -> ItemsOf {
    let items = ctx.look_ahead();
    ItemsOf {
        restaurant_id,
        details: ["description", "dietaryTags", "imageUrl", "allergens"]
            .into_iter()
            .any(|field| items.field(field).exists()),
    }
}

/// A dish or drink.
#[derive(Clone)]
pub struct MenuItem(pub Arc<ItemRow>);

impl MenuItem {
    /// Description, tags and photo: read with the item when the query asked for them up
    /// front (see `items_of`), otherwise now.
    async fn details(&self, ctx: &Context<'_>) -> Result<Arc<ItemDetails>> {
        if let Some(details) = &self.0.details {
            return Ok(details.clone());
        }
        let item = ctx
            .data::<Loaders>()?
            .menu_items
            .load_one(self.0.id)
            .await?
            .ok_or_else(|| AppError::NotFound("menu item".into()))?;
        Ok(Arc::new(item.as_ref().into()))
    }
}

/// A dish or drink.
#[Object]
impl MenuItem {
    /// Global ID of the item.
    pub async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::MenuItem, self.0.id)
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What is in it.
    async fn description(&self, ctx: &Context<'_>) -> Result<String> {
        Ok(self.details(ctx).await?.description.clone())
    }

    /// Price of one.
    async fn price(&self) -> Money {
        Money::from_minor(self.0.price_amount, &self.0.currency)
    }

    /// Whether it can be ordered now (false when sold out).
    async fn available(&self) -> bool {
        self.0.is_available
    }

    /// Dietary properties.
    async fn dietary_tags(&self, ctx: &Context<'_>) -> Result<Vec<DietaryTag>> {
        Ok(self
            .details(ctx)
            .await?
            .dietary_tags
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|tag| tag.as_str().and_then(DietaryTag::from_stored))
            .collect())
    }

    /// Allergens it contains, as the restaurant declares them.
    async fn allergens(&self, ctx: &Context<'_>) -> Result<Vec<Allergen>> {
        Ok(self
            .details(ctx)
            .await?
            .allergens
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|name| name.as_str().and_then(Allergen::from_stored))
            .collect())
    }

    /// Its photo, when it has one.
    async fn image(&self, ctx: &Context<'_>) -> Result<Option<crate::graphql::media::Image>> {
        crate::graphql::media::load_image(ctx, crate::services::photos::Target::Item(self.0.id))
            .await
    }

    /// URL of a photo, when there is one (the widest size of `image`).
    #[graphql(deprecation = "Use `image { url(width:) }`, which has sizes and alt text.")]
    async fn image_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.details(ctx).await?.image_url.clone())
    }

    /// Choices to make when ordering it ("Size", "Extras"), in menu order; empty when there
    /// are none. `placeOrder` takes the chosen options' ids per line.
    #[graphql(complexity = "list_cost(2, child_complexity)")]
    async fn option_groups(&self, ctx: &Context<'_>) -> Result<Vec<MenuOptionGroup>> {
        let groups = ctx
            .data::<Loaders>()?
            .option_groups
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        let currency: Arc<str> = Arc::from(self.0.currency.as_str());
        Ok(groups
            .iter()
            .map(|group| MenuOptionGroup {
                group: group.clone(),
                currency: currency.clone(),
            })
            .collect())
    }

    /// The category the item is listed under.
    async fn category(&self, ctx: &Context<'_>) -> Result<MenuCategory> {
        let category = ctx
            .data::<Loaders>()?
            .menu_categories
            .load_one(self.0.category_id)
            .await?
            .ok_or_else(|| AppError::NotFound("menu category".into()))?;
        Ok(MenuCategory(category))
    }

    /// The restaurant that serves it.
    async fn restaurant(&self, ctx: &Context<'_>) -> Result<Restaurant> {
        load_restaurant(ctx, self.0.restaurant_id).await
    }
}

/// The restaurant `id`, which a foreign key guarantees exists.
pub async fn load_restaurant(ctx: &Context<'_>, id: i64) -> Result<Restaurant> {
    let restaurant = ctx
        .data::<Loaders>()?
        .restaurants
        .load_one(id)
        .await?
        .ok_or_else(|| AppError::NotFound("restaurant".into()))?;
    Ok(Restaurant::from(restaurant))
}

/// A choice to make about a menu item: "Size" (exactly one of Small / Large), "Extras" (up
/// to three of …).
pub struct MenuOptionGroup {
    group: Arc<super::loaders::GroupRow>,
    /// The item's currency, which its options are priced in.
    currency: Arc<str>,
}

/// A choice to make about a menu item: "Size" (exactly one of Small / Large), "Extras" (up
/// to three of …).
#[Object]
impl MenuOptionGroup {
    /// Global ID of the group (for `setMenuItemOptions`).
    async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::MenuOptionGroup, self.group.0.id)
    }

    /// Display name, e.g. "Size".
    async fn name(&self) -> &str {
        &self.group.0.name
    }

    /// Fewest options an order line must choose from the group.
    async fn min_choices(&self) -> i32 {
        self.group.0.min_choices
    }

    /// Most options an order line may choose from the group.
    async fn max_choices(&self) -> i32 {
        self.group.0.max_choices
    }

    /// Whether a choice is needed (`minChoices` is 1 or more).
    async fn required(&self) -> bool {
        self.group.0.min_choices > 0
    }

    /// The options, in menu order.
    async fn options(&self) -> Vec<MenuOption> {
        self.group
            .1
            .iter()
            .map(|option| MenuOption {
                option: option.clone(),
                currency: self.currency.clone(),
            })
            .collect()
    }
}

/// One option of a group, e.g. "Large".
pub struct MenuOption {
    option: entities::menu_option::Model,
    currency: Arc<str>,
}

/// One option of a group, e.g. "Large".
#[Object]
impl MenuOption {
    /// Global ID of the option: what `placeOrder` takes in `lines.optionIds`.
    async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::MenuOption, self.option.id)
    }

    /// Display name.
    async fn name(&self) -> &str {
        &self.option.name
    }

    /// What it adds to the price of one item (zero for most).
    async fn price_delta(&self) -> Money {
        Money::from_minor(self.option.price_delta, &self.currency)
    }

    /// Whether it can be chosen now (false when sold out).
    async fn available(&self) -> bool {
        self.option.is_available
    }
}
