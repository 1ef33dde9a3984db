//! The three benchmark operations (`bench/queries/q1..q3`): their SQL, one statement per level
//! of the query, and their responses, serialized with serde in the order of each document's
//! selection set. Every value is computed as dishpatch computes it; the function that does the
//! same in dishpatch is named next to each.

use std::collections::HashMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;
use sqlx::AssertSqlSafe;

use crate::db::{Db, Param, one_of};

/// Anything that can fail while answering: a database error, mostly.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// A response body and how many SQL statements it took.
pub struct Answer {
    /// The JSON body, `{"data":{...}}`.
    pub body: Vec<u8>,
    /// SQL statements executed.
    pub statements: u32,
}

impl Answer {
    fn new(data: &impl Serialize, statements: u32) -> Result<Self, Error> {
        Ok(Self {
            body: serde_json::to_vec(&Data { data })?,
            statements,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Values as dishpatch shows them.

/// A global ID, base64url of `Type:id` (`relay::GlobalId::encode`).
fn global_id(type_name: &str, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{type_name}:{id}"))
}

/// The cursor of a restaurant in the default ordering (`relay::KeysetPosition` as made by
/// `services::restaurants::list`): base64url of `{"o":"name:asc","k":<name>,"id":<id>}`.
fn name_cursor(name: &str, id: i64) -> Result<String, Error> {
    #[derive(Serialize)]
    struct Position<'a> {
        o: &'static str,
        k: &'a str,
        id: i64,
    }
    let json = serde_json::to_vec(&Position {
        o: "name:asc",
        k: name,
        id,
    })?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// `Money` (`common::Money::from_minor`): the amount in major units, as exact decimal text.
#[derive(Serialize)]
struct Money<'a> {
    amount: String,
    currency: &'a str,
}

impl<'a> Money<'a> {
    fn from_minor(minor: i64, currency: &'a str) -> Self {
        let digits = match currency {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        };
        let amount = if digits == 0 {
            minor.to_string()
        } else {
            let divisor = 10_i64.pow(digits);
            let sign = if minor < 0 { "-" } else { "" };
            let (major, fraction) = (minor.abs() / divisor, minor.abs() % divisor);
            format!("{sign}{major}.{fraction:0width$}", width = digits as usize)
        };
        Self { amount, currency }
    }
}

/// `Rating` (`restaurants::types::Rating`): the mean rounded to two decimals, null when none.
#[derive(Serialize)]
struct Rating {
    average: Option<f64>,
    count: i64,
}

impl Rating {
    fn new(sum: i64, count: i64) -> Self {
        Self {
            average: (count > 0).then(|| (sum as f64 / count as f64 * 100.0).round() / 100.0),
            count,
        }
    }
}

/// The `DietaryTag` enum names of a stored JSON array (`menu::types::DietaryTag`); unknown
/// tags and anything that is not a string are skipped.
fn dietary_tags(stored: &str) -> Vec<&'static str> {
    let tags: serde_json::Value = serde_json::from_str(stored).unwrap_or_default();
    tags.as_array()
        .into_iter()
        .flatten()
        .filter_map(|tag| {
            Some(match tag.as_str()? {
                "vegetarian" => "VEGETARIAN",
                "vegan" => "VEGAN",
                "gluten_free" => "GLUTEN_FREE",
                "dairy_free" => "DAIRY_FREE",
                "nut_free" => "NUT_FREE",
                "halal" => "HALAL",
                "kosher" => "KOSHER",
                "spicy" => "SPICY",
                _ => return None,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Response shapes shared by the operations.

#[derive(Serialize)]
struct Data<T> {
    data: T,
}

#[derive(Serialize)]
struct Restaurants<T> {
    restaurants: T,
}

#[derive(Serialize)]
struct Edges<T> {
    edges: Vec<T>,
}

#[derive(Serialize)]
struct Node<T> {
    node: T,
}

#[derive(Serialize)]
struct Menu<T> {
    categories: Vec<T>,
}

// ---------------------------------------------------------------------------------------------
// Q1 `Restaurants`: a page of 50 with `totalCount`. Two statements, run concurrently.

/// The first page in the default ordering (by name, then id), as `services::restaurants::list`
/// orders it; no filter, and no extra row since neither query asks for `pageInfo`. Rows are
/// `id, name, rating_sum, rating_count`.
const RESTAURANT_PAGE: &str =
    "SELECT id, name, rating_sum, rating_count FROM restaurants ORDER BY name, id LIMIT $1";

type ListedRow = (i64, String, i64, i64);

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Q1Connection<'a> {
    total_count: i64,
    edges: Vec<Q1Edge<'a>>,
}

#[derive(Serialize)]
struct Q1Edge<'a> {
    cursor: String,
    node: Q1Restaurant<'a>,
}

#[derive(Serialize)]
struct Q1Restaurant<'a> {
    id: String,
    name: &'a str,
    rating: Rating,
}

/// Answers `Restaurants` (`q1_restaurants.graphql`).
pub async fn restaurants(db: &Db) -> Result<Answer, Error> {
    let (page, count) = tokio::try_join!(
        db.fetch::<ListedRow>(RESTAURANT_PAGE, &[Param::Int(50)]),
        db.fetch::<(i64,)>("SELECT COUNT(*) FROM restaurants", &[]),
    )?;
    let mut edges = Vec::with_capacity(page.len());
    for (id, name, rating_sum, rating_count) in &page {
        edges.push(Q1Edge {
            cursor: name_cursor(name, *id)?,
            node: Q1Restaurant {
                id: global_id("Restaurant", *id),
                name,
                rating: Rating::new(*rating_sum, *rating_count),
            },
        });
    }
    let total_count = count.first().map_or(0, |row| row.0);
    let restaurants = Q1Connection { total_count, edges };
    Answer::new(&Restaurants { restaurants }, 2)
}

// ---------------------------------------------------------------------------------------------
// Q2 `Nested($first)`: restaurants, their menus, their 5 newest reviews and their authors.
// Five statements: the page; then the categories, items and reviews of all its restaurants,
// concurrently; then the authors of all those reviews.

#[derive(Serialize)]
struct Q2Restaurant<'a> {
    id: String,
    name: &'a str,
    rating: Rating,
    menu: Menu<Q2Category<'a>>,
    reviews: Edges<Node<Q2Review<'a>>>,
}

#[derive(Serialize)]
struct Q2Category<'a> {
    name: &'a str,
    items: Vec<Q2Item<'a>>,
}

#[derive(Serialize)]
struct Q2Item<'a> {
    id: String,
    name: &'a str,
    price: Money<'a>,
}

#[derive(Serialize)]
struct Q2Review<'a> {
    rating: i32,
    body: &'a str,
    author: Author<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Author<'a> {
    display_name: &'a str,
}

/// Answers `Nested` (`q2_nested.graphql`) for `first` restaurants, 0 to 100.
pub async fn nested(db: &Db, first: i64) -> Result<Answer, Error> {
    let page: Vec<ListedRow> = db.fetch(RESTAURANT_PAGE, &[Param::Int(first)]).await?;
    if page.is_empty() {
        let restaurants: Edges<Node<Q2Restaurant>> = Edges { edges: Vec::new() };
        return Answer::new(&Restaurants { restaurants }, 1);
    }
    let (any, restaurant_ids) = one_of(db, page.iter().map(|row| row.0));
    let ids = [Param::Text(&restaurant_ids)];
    // Menu order as `menu::loaders` reads it: categories by position; the items of a category
    // by position (dishpatch sorts a restaurant's items by category position first, then keeps
    // each category's own, which leaves them in this order).
    let categories = format!(
        "SELECT restaurant_id, id, name FROM menu_categories WHERE restaurant_id {any} \
         ORDER BY restaurant_id, position, id"
    );
    let items = format!(
        "SELECT restaurant_id, category_id, id, name, price_amount, currency FROM menu_items \
         WHERE restaurant_id {any} AND deleted_at IS NULL ORDER BY category_id, position, id"
    );
    // The 5 newest reviews of each restaurant (`created_at`, then `id`, both descending), each
    // restaurant's read through its index as `reviews::loaders::ReviewPages` does: `LATERAL` on
    // PostgreSQL, a per-restaurant `LIMIT` subquery on SQLite.
    let reviews = if matches!(db, Db::Postgres(_)) {
        "SELECT r.restaurant_id, r.author_id, r.rating, r.body \
         FROM unnest(CAST($1 AS bigint[])) AS p(id) CROSS JOIN LATERAL (\
           SELECT restaurant_id, author_id, rating, body, created_at, id FROM reviews \
           WHERE restaurant_id = p.id ORDER BY created_at DESC, id DESC LIMIT 5\
         ) AS r ORDER BY r.restaurant_id, r.created_at DESC, r.id DESC"
    } else {
        "SELECT r.restaurant_id, r.author_id, r.rating, r.body \
         FROM json_each($1) AS p JOIN reviews AS r ON r.id IN (\
           SELECT id FROM reviews WHERE restaurant_id = p.value \
           ORDER BY created_at DESC, id DESC LIMIT 5\
         ) ORDER BY r.restaurant_id, r.created_at DESC, r.id DESC"
    };
    let (categories, items, reviews) = tokio::try_join!(
        db.fetch::<(i64, i64, String)>(AssertSqlSafe(categories), &ids),
        db.fetch::<(i64, i64, i64, String, i64, String)>(AssertSqlSafe(items), &ids),
        db.fetch::<(i64, i64, i32, String)>(AssertSqlSafe(reviews), &ids),
    )?;
    let users: Vec<(i64, String)> = if reviews.is_empty() {
        Vec::new()
    } else {
        let (any, author_ids) = one_of(db, reviews.iter().map(|row| row.1));
        let sql = format!("SELECT id, display_name FROM users WHERE id {any}");
        db.fetch(AssertSqlSafe(sql), &[Param::Text(&author_ids)])
            .await?
    };

    let mut items_of: HashMap<(i64, i64), Vec<Q2Item>> = HashMap::new();
    for (restaurant_id, category_id, id, name, price_amount, currency) in &items {
        items_of
            .entry((*restaurant_id, *category_id))
            .or_default()
            .push(Q2Item {
                id: global_id("MenuItem", *id),
                name,
                price: Money::from_minor(*price_amount, currency),
            });
    }
    let mut menus: HashMap<i64, Vec<Q2Category>> = HashMap::new();
    for (restaurant_id, id, name) in &categories {
        let items = items_of.remove(&(*restaurant_id, *id)).unwrap_or_default();
        menus
            .entry(*restaurant_id)
            .or_default()
            .push(Q2Category { name, items });
    }
    let names: HashMap<i64, &str> = users
        .iter()
        .map(|(id, name)| (*id, name.as_str()))
        .collect();
    let mut reviews_of: HashMap<i64, Vec<Node<Q2Review>>> = HashMap::new();
    for (restaurant_id, author_id, rating, body) in &reviews {
        let display_name = names
            .get(author_id)
            .ok_or_else(|| format!("user {author_id} not found"))?;
        let node = Q2Review {
            rating: *rating,
            body,
            author: Author { display_name },
        };
        reviews_of
            .entry(*restaurant_id)
            .or_default()
            .push(Node { node });
    }
    let edges = page
        .iter()
        .map(|(id, name, rating_sum, rating_count)| Node {
            node: Q2Restaurant {
                id: global_id("Restaurant", *id),
                name,
                rating: Rating::new(*rating_sum, *rating_count),
                menu: Menu {
                    categories: menus.remove(id).unwrap_or_default(),
                },
                reviews: Edges {
                    edges: reviews_of.remove(id).unwrap_or_default(),
                },
            },
        })
        .collect();
    Answer::new(
        &Restaurants {
            restaurants: Edges { edges },
        },
        5,
    )
}

// ---------------------------------------------------------------------------------------------
// Q3 `Restaurant($slug)`: one restaurant with its whole menu. Four statements: the restaurant;
// then its cuisines, categories and items, concurrently.

#[derive(Serialize)]
struct Q3Data<'a> {
    restaurant: Option<Q3Restaurant<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Q3Restaurant<'a> {
    id: String,
    name: &'a str,
    description: &'a str,
    cuisines: Vec<&'a str>,
    address: &'a str,
    delivery_fee: Money<'a>,
    menu: Menu<Q3Category<'a>>,
}

#[derive(Serialize)]
struct Q3Category<'a> {
    id: String,
    name: &'a str,
    position: i32,
    items: Vec<Q3Item<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Q3Item<'a> {
    id: String,
    name: &'a str,
    description: &'a str,
    price: Money<'a>,
    available: bool,
    dietary_tags: Vec<&'static str>,
    image_url: Option<&'a str>,
}

/// A menu item as Q3 shows it: `category_id, id, name, description, price_amount, currency,
/// is_available, dietary_tags, image_url`.
type ItemRow = (
    i64,
    i64,
    String,
    String,
    i64,
    String,
    bool,
    String,
    Option<String>,
);

/// Answers `Restaurant` (`q3_restaurant.graphql`) for `slug`; `restaurant` is null without one.
pub async fn restaurant(db: &Db, slug: &str) -> Result<Answer, Error> {
    let found: Vec<(i64, String, String, String, String, i64)> = db
        .fetch(
            "SELECT id, name, description, address, currency, delivery_fee FROM restaurants \
             WHERE slug = $1",
            &[Param::Text(slug)],
        )
        .await?;
    let Some((id, name, description, address, currency, delivery_fee)) = found.first() else {
        return Answer::new(&Q3Data { restaurant: None }, 1);
    };
    let by_id = [Param::Int(*id)];
    let (cuisines, categories, items) = tokio::try_join!(
        db.fetch::<(String,)>(
            "SELECT cuisine FROM restaurant_cuisines WHERE restaurant_id = $1 ORDER BY cuisine",
            &by_id,
        ),
        db.fetch::<(i64, String, i32)>(
            "SELECT id, name, position FROM menu_categories WHERE restaurant_id = $1 \
             ORDER BY position, id",
            &by_id,
        ),
        // `dietary_tags` is JSON (text on SQLite, `json` on PostgreSQL): read it as text.
        db.fetch::<ItemRow>(
            "SELECT category_id, id, name, description, price_amount, currency, is_available, \
             CAST(dietary_tags AS TEXT), image_url FROM menu_items \
             WHERE restaurant_id = $1 AND deleted_at IS NULL ORDER BY category_id, position, id",
            &by_id,
        ),
    )?;

    let mut items_of: HashMap<i64, Vec<Q3Item>> = HashMap::new();
    for (category_id, id, name, description, price_amount, currency, available, tags, image) in
        &items
    {
        items_of.entry(*category_id).or_default().push(Q3Item {
            id: global_id("MenuItem", *id),
            name,
            description,
            price: Money::from_minor(*price_amount, currency),
            available: *available,
            dietary_tags: dietary_tags(tags),
            image_url: image.as_deref(),
        });
    }
    let categories = categories
        .iter()
        .map(|(id, name, position)| Q3Category {
            id: global_id("MenuCategory", *id),
            name,
            position: *position,
            items: items_of.remove(id).unwrap_or_default(),
        })
        .collect();
    let restaurant = Q3Restaurant {
        id: global_id("Restaurant", *id),
        name,
        description,
        cuisines: cuisines.iter().map(|row| row.0.as_str()).collect(),
        address,
        delivery_fee: Money::from_minor(*delivery_fee, currency),
        menu: Menu { categories },
    };
    Answer::new(
        &Q3Data {
            restaurant: Some(restaurant),
        },
        4,
    )
}
