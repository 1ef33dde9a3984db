//! The deterministic demo data set: restaurants of many cuisines with categorized menus, users
//! of every role, past orders in every status with their events, deliveries and reviews.
//!
//! The same scale always gives the same rows (a fixed random seed and a fixed clock). `scale`
//! multiplies everything; rows go in with explicit ids, in batches, in one transaction.

use std::fmt;

use chrono::{DateTime, Duration, TimeZone, Utc};
use entities::{
    DeliveryStatus, OrderEventKind, OrderStatus, delivery, menu_category, menu_item, menu_option,
    menu_option_group, opening_hours, order, order_event, order_item, restaurant,
    restaurant_cuisine, restaurant_staff, review, user,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, TransactionTrait,
};
use serde_json::json;

/// Emails of the demo accounts, one per role.
pub const DEMO_ADMIN: &str = "admin@dishpatch.test";
pub const DEMO_CUSTOMER: &str = "customer@dishpatch.test";
pub const DEMO_COURIER: &str = "courier@dishpatch.test";
pub const DEMO_OWNER: &str = "owner@dishpatch.test";
/// How far every demo restaurant delivers: across the demo city (about 25 by 18 km).
pub const DELIVERY_RADIUS_M: i32 = 15_000;
/// How long every demo kitchen takes for an order.
pub const PREPARATION_MINUTES: i32 = 20;

const RESTAURANTS_PER_SCALE: i64 = 20;
const USERS_PER_SCALE: i64 = 200;
const COURIERS_PER_SCALE: i64 = 10;
const ORDERS_PER_SCALE: i64 = 2700;
const BATCH_ROWS: usize = 1000;
/// The demo city's time zone.
pub const TIME_ZONE: &str = "Europe/Berlin";
const CITY_CENTER: (f64, f64) = (52.5200, 13.4050);

/// Whether the database has no restaurants yet.
pub async fn is_empty(db: &DatabaseConnection) -> Result<bool, DbErr> {
    Ok(restaurant::Entity::find().count(db).await? == 0)
}

/// How many rows of each kind were written.
#[derive(Debug, Default, Clone, Copy)]
pub struct SeedCounts {
    pub users: usize,
    pub restaurants: usize,
    pub menu_items: usize,
    pub orders: usize,
    pub reviews: usize,
}

impl fmt::Display for SeedCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} users, {} restaurants, {} menu items, {} orders, {} reviews",
            self.users, self.restaurants, self.menu_items, self.orders, self.reviews
        )
    }
}

struct Cuisine {
    tags: &'static [&'static str],
    names: [&'static str; 2],
    blurb: &'static str,
    starters: &'static [&'static str],
    mains: &'static [&'static str],
    desserts: &'static [&'static str],
    spicy: bool,
}

const CUISINES: &[Cuisine] = &[
    Cuisine {
        tags: &["italian", "pizza"],
        names: ["Trattoria Roma", "Forno Napoli"],
        blurb: "Wood-fired pizza and fresh pasta made every morning.",
        starters: &[
            "Bruschetta",
            "Burrata",
            "Arancini",
            "Minestrone",
            "Carpaccio",
            "Caprese",
        ],
        mains: &[
            "Margherita",
            "Diavola",
            "Quattro Formaggi",
            "Spaghetti Carbonara",
            "Lasagne",
            "Penne Arrabbiata",
            "Risotto ai Funghi",
            "Gnocchi al Pesto",
            "Saltimbocca",
            "Tagliatelle al Ragu",
        ],
        desserts: &["Tiramisu", "Panna Cotta", "Cannoli", "Affogato"],
        spicy: false,
    },
    Cuisine {
        tags: &["japanese", "sushi"],
        names: ["Sakura Sushi", "Ramen Ichiban"],
        blurb: "Nigiri, maki and slow-simmered ramen broths.",
        starters: &[
            "Edamame",
            "Miso Soup",
            "Gyoza",
            "Seaweed Salad",
            "Agedashi Tofu",
            "Takoyaki",
        ],
        mains: &[
            "Salmon Nigiri",
            "Tuna Maki",
            "California Roll",
            "Tonkotsu Ramen",
            "Shoyu Ramen",
            "Chicken Katsu Curry",
            "Unagi Don",
            "Vegetable Tempura",
            "Teriyaki Salmon",
            "Dragon Roll",
        ],
        desserts: &["Mochi", "Matcha Cheesecake", "Dorayaki", "Yuzu Sorbet"],
        spicy: false,
    },
    Cuisine {
        tags: &["mexican"],
        names: ["Casa Oaxaca", "Taqueria El Sol"],
        blurb: "Hand-pressed tortillas, salsas and slow-cooked meats.",
        starters: &[
            "Guacamole",
            "Nachos",
            "Elote",
            "Tortilla Soup",
            "Queso Fundido",
            "Ceviche",
        ],
        mains: &[
            "Tacos al Pastor",
            "Carnitas Tacos",
            "Chicken Burrito",
            "Bean Burrito",
            "Enchiladas Verdes",
            "Quesadilla",
            "Chili con Carne",
            "Fish Tacos",
            "Mole Poblano",
            "Tamales",
        ],
        desserts: &["Churros", "Flan", "Tres Leches", "Arroz con Leche"],
        spicy: true,
    },
    Cuisine {
        tags: &["indian", "curry"],
        names: ["Spice of Delhi", "Bombay Kitchen"],
        blurb: "Tandoor breads and curries from North and South India.",
        starters: &[
            "Samosa",
            "Onion Bhaji",
            "Paneer Tikka",
            "Dal Soup",
            "Chicken Pakora",
            "Papadum",
        ],
        mains: &[
            "Butter Chicken",
            "Chicken Tikka Masala",
            "Lamb Rogan Josh",
            "Palak Paneer",
            "Chana Masala",
            "Vegetable Biryani",
            "Chicken Biryani",
            "Dal Makhani",
            "Prawn Korma",
            "Aloo Gobi",
        ],
        desserts: &["Gulab Jamun", "Mango Lassi Pudding", "Kheer", "Kulfi"],
        spicy: true,
    },
    Cuisine {
        tags: &["thai"],
        names: ["Bangkok Street", "Lotus Thai"],
        blurb: "Street-food classics with fresh herbs and lime.",
        starters: &[
            "Spring Rolls",
            "Tom Yum",
            "Chicken Satay",
            "Papaya Salad",
            "Fish Cakes",
            "Tom Kha",
        ],
        mains: &[
            "Pad Thai",
            "Green Curry",
            "Red Curry",
            "Massaman Curry",
            "Pad Kra Pao",
            "Khao Pad",
            "Pad See Ew",
            "Panang Curry",
            "Larb Gai",
            "Drunken Noodles",
        ],
        desserts: &[
            "Mango Sticky Rice",
            "Coconut Ice Cream",
            "Banana Fritters",
            "Tapioca Pudding",
        ],
        spicy: true,
    },
    Cuisine {
        tags: &["chinese"],
        names: ["Golden Dragon", "Sichuan House"],
        blurb: "Dim sum, wok dishes and fiery Sichuan specialities.",
        starters: &[
            "Har Gow",
            "Siu Mai",
            "Wonton Soup",
            "Spring Onion Pancake",
            "Hot and Sour Soup",
            "Cucumber Salad",
        ],
        mains: &[
            "Kung Pao Chicken",
            "Mapo Tofu",
            "Sweet and Sour Pork",
            "Beef Chow Fun",
            "Dan Dan Noodles",
            "Char Siu",
            "Egg Fried Rice",
            "Twice-Cooked Pork",
            "Peking Duck",
            "Stir-Fried Greens",
        ],
        desserts: &["Egg Tart", "Sesame Balls", "Mango Pudding", "Almond Jelly"],
        spicy: true,
    },
    Cuisine {
        tags: &["american", "burgers"],
        names: ["Liberty Burger", "Smokehouse 66"],
        blurb: "Smash burgers, barbecue and crispy fries.",
        starters: &[
            "Buffalo Wings",
            "Onion Rings",
            "Mozzarella Sticks",
            "Coleslaw",
            "Loaded Fries",
            "Corn Bread",
        ],
        mains: &[
            "Classic Cheeseburger",
            "Bacon Burger",
            "Veggie Burger",
            "Pulled Pork Sandwich",
            "BBQ Ribs",
            "Fried Chicken",
            "Mac and Cheese",
            "Brisket Plate",
            "Chicken Burger",
            "Philly Cheesesteak",
        ],
        desserts: &["Brownie", "Apple Pie", "Cheesecake", "Milkshake"],
        spicy: false,
    },
    Cuisine {
        tags: &["vietnamese"],
        names: ["Pho Saigon", "Hanoi Corner"],
        blurb: "Fragrant pho, banh mi and fresh summer rolls.",
        starters: &[
            "Summer Rolls",
            "Crispy Rolls",
            "Green Papaya Salad",
            "Chicken Wings",
            "Prawn Crackers",
            "Lotus Salad",
        ],
        mains: &[
            "Pho Bo",
            "Pho Ga",
            "Bun Cha",
            "Banh Mi",
            "Bun Bo Hue",
            "Com Tam",
            "Lemongrass Tofu",
            "Caramel Pork",
            "Bo Luc Lac",
            "Cao Lau",
        ],
        desserts: &[
            "Che Ba Mau",
            "Coconut Flan",
            "Banana Cake",
            "Sesame Sweet Soup",
        ],
        spicy: false,
    },
    Cuisine {
        tags: &["greek", "mediterranean"],
        names: ["Taverna Olympia", "Mykonos Grill"],
        blurb: "Grilled meats, mezze and olive oil from Crete.",
        starters: &[
            "Tzatziki",
            "Dolmades",
            "Spanakopita",
            "Greek Salad",
            "Saganaki",
            "Hummus",
        ],
        mains: &[
            "Chicken Souvlaki",
            "Pork Gyros",
            "Moussaka",
            "Lamb Kleftiko",
            "Falafel Plate",
            "Grilled Octopus",
            "Pastitsio",
            "Bifteki",
            "Gemista",
            "Halloumi Plate",
        ],
        desserts: &[
            "Baklava",
            "Loukoumades",
            "Galaktoboureko",
            "Greek Yoghurt with Honey",
        ],
        spicy: false,
    },
    Cuisine {
        tags: &["korean"],
        names: ["Seoul Kitchen", "Kimchi House"],
        blurb: "Bibimbap, Korean fried chicken and sizzling stews.",
        starters: &[
            "Kimchi",
            "Mandu",
            "Pajeon",
            "Japchae",
            "Tteokbokki",
            "Gyeran Jjim",
        ],
        mains: &[
            "Bibimbap",
            "Bulgogi",
            "Korean Fried Chicken",
            "Kimchi Jjigae",
            "Galbi",
            "Sundubu Jjigae",
            "Dakgalbi",
            "Bossam",
            "Naengmyeon",
            "Kimbap",
        ],
        desserts: &["Hotteok", "Bingsu", "Yakgwa", "Sweet Rice Punch"],
        spicy: true,
    },
];

/// Dishes whose names contain these are never tagged vegetarian.
const MEAT_WORDS: &[&str] = &[
    "chicken",
    "pork",
    "beef",
    "lamb",
    "prawn",
    "fish",
    "salmon",
    "tuna",
    "duck",
    "bacon",
    "brisket",
    "ribs",
    "octopus",
    "unagi",
    "carnitas",
    "pastor",
    "galbi",
    "bulgogi",
    "char siu",
    "gyros",
    "souvlaki",
    "carpaccio",
    "saltimbocca",
    "ragu",
    "carbonara",
    "wings",
    "ceviche",
    "burger",
    "cheesesteak",
    "bossam",
    "dak",
    "pho",
    "bun",
    "banh mi",
    "com tam",
    "cao lau",
    "bo luc lac",
    "moussaka",
    "pastitsio",
    "bifteki",
    "kleftiko",
    "mandu",
    "dragon roll",
    "california",
    "gyoza",
    "takoyaki",
    "siu mai",
    "har gow",
    "wonton",
    "kung pao",
    "mapo",
    "dan dan",
    "chili con carne",
    "pakora",
    "tikka masala",
    "rogan josh",
    "korma",
    "satay",
    "larb",
    "tom yum",
    "fish cakes",
    "tamales",
    "mole",
    "nachos",
    "kimbap",
    "naengmyeon",
    "jjigae",
    "dolmades",
    "bibimbap",
    "caesar",
    "pad thai",
    "katsu",
    "teriyaki",
    "tempura",
];

const SIDES: &[&str] = &["Fries", "Steamed Rice", "Side Salad"];
const DRINKS: &[&str] = &[
    "Still Water",
    "Sparkling Water",
    "Cola",
    "Lemonade",
    "Iced Tea",
    "Orange Juice",
    "Ginger Beer",
];
const DISTRICTS: &[&str] = &[
    "Mitte",
    "Kreuzberg",
    "Neukoelln",
    "Friedrichshain",
    "Prenzlauer Berg",
    "Wedding",
    "Moabit",
    "Schoeneberg",
    "Charlottenburg",
    "Pankow",
    "Treptow",
    "Lichtenberg",
    "Steglitz",
    "Spandau",
    "Tempelhof",
    "Wilmersdorf",
    "Koepenick",
    "Reinickendorf",
    "Marzahn",
    "Zehlendorf",
];
const STREETS: &[&str] = &[
    "Torstrasse",
    "Oranienstrasse",
    "Karl-Marx-Strasse",
    "Warschauer Strasse",
    "Kastanienallee",
    "Mullerstrasse",
    "Turmstrasse",
    "Hauptstrasse",
    "Kantstrasse",
    "Berliner Strasse",
];
const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannah", "Ivan", "Julia", "Karim",
    "Lena", "Mia", "Noah", "Omar", "Paula", "Quentin", "Rosa", "Sami", "Tara", "Umut", "Vera",
    "Wei", "Yara", "Zoe",
];
const LAST_NAMES: &[&str] = &[
    "Becker",
    "Cohen",
    "Dubois",
    "Fischer",
    "Garcia",
    "Hoffmann",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Mueller",
    "Nguyen",
    "Okafor",
    "Petrov",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Weber",
    "Yilmaz",
    "Zimmermann",
];
const REVIEW_BODIES: &[&str] = &[
    "Arrived hot and on time. Will order again.",
    "Generous portions, a bit too salty for me.",
    "Best in the neighbourhood, the courier was lovely.",
    "Took longer than promised, but the food made up for it.",
    "Fresh and tasty, exactly like eating in.",
    "Packaging leaked a little, flavours were great though.",
    "Solid choice for a weeknight.",
    "Not what I expected, the sauce was bland.",
    "",
];

/// Fills an empty database with the demo data set at `scale` (1 for the demo).
pub async fn seed_demo(db: &DatabaseConnection, scale: u32) -> Result<SeedCounts, DbErr> {
    let txn = db.begin().await?;
    let counts = Seeder::new(&txn, i64::from(scale)).run().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        reset_sequences(&txn).await?;
    }
    txn.commit().await?;
    // Fresh statistics, so the planner knows the tables' sizes from the first query on
    // instead of when autovacuum (PostgreSQL) or nobody (SQLite) gets to it.
    db.execute_unprepared("ANALYZE").await?;
    Ok(counts)
}

/// Photos for the demo's first restaurant (its logo, cover and first dishes), drawn here
/// rather than downloaded, and stored through the same checks and re-encoding as uploads.
pub async fn demo_photos(
    db: &DatabaseConnection,
    media: &crate::media::Media,
) -> anyhow::Result<usize> {
    use crate::services::photos::{Target, upload};
    let items = menu_item::Entity::find()
        .filter(menu_item::Column::RestaurantId.eq(1))
        .order_by_asc(menu_item::Column::Id)
        .limit(8)
        .all(db)
        .await?;
    let mut targets = vec![
        (
            Target::Logo(1),
            "Trattoria Roma".to_owned(),
            draw(400, 400, 0),
        ),
        (
            Target::Cover(1),
            "The dining room".to_owned(),
            draw(1600, 600, 1),
        ),
    ];
    for item in &items {
        targets.push((
            Target::Item(item.id),
            item.name.clone(),
            draw(1200, 900, item.id),
        ));
    }
    let count = targets.len();
    for (target, alt, png) in targets {
        let stored = upload(db, media, None, target, png, &alt, Utc::now())
            .await
            .map_err(|error| anyhow::anyhow!("storing a demo photo: {error:?}"))?;
        if let Err(error) = stored {
            anyhow::bail!("a demo photo was refused: {}", error.message);
        }
    }
    Ok(count)
}

/// A dish on a plate on a wooden table, `seed` choosing the colours, as PNG.
fn draw(width: u32, height: u32, seed: i64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed.unsigned_abs());
    let food = [rng.u8(150..=230), rng.u8(60..=170), rng.u8(20..=90)];
    let (cx, cy) = (f64::from(width) / 2.0, f64::from(height) / 2.0);
    let plate = f64::from(width.min(height)) * 0.42;
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        let (dx, dy) = (f64::from(x) - cx, f64::from(y) - cy);
        let distance = (dx * dx + dy * dy).sqrt();
        let grain = ((f64::from(y) * 0.15 + (f64::from(x) * 0.02).sin() * 6.0).sin() * 18.0) as i16;
        let shade = |base: u8, by: i16| (i16::from(base) + by).clamp(0, 255) as u8;
        if distance < plate * 0.62 {
            let speckle = ((dx * 0.3).sin() * (dy * 0.3).cos() * 25.0) as i16;
            image::Rgb([
                shade(food[0], speckle),
                shade(food[1], speckle),
                shade(food[2], speckle / 2),
            ])
        } else if distance < plate {
            let rim = if distance > plate * 0.92 { -20 } else { 0 };
            image::Rgb([shade(242, rim), shade(240, rim), shade(235, rim)])
        } else {
            image::Rgb([shade(120, grain), shade(80, grain), shade(50, grain / 2)])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(picture)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("a PNG encodes in memory");
    out.into_inner()
}

/// An option group of the demo's menus: its name, most choices, and options with price
/// deltas.
type Choices = (&'static str, i32, &'static [(&'static str, i64)]);

/// Rows were written with explicit ids; move PostgreSQL's sequences past them.
async fn reset_sequences(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    for table in [
        "users",
        "restaurants",
        "menu_categories",
        "menu_items",
        "menu_option_groups",
        "menu_options",
        "orders",
        "order_items",
        "order_events",
        "deliveries",
        "reviews",
    ] {
        txn.execute_unprepared(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
             COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        ))
        .await?;
    }
    Ok(())
}

/// Writes `rows` in batches small enough for any database's parameter limit.
async fn insert_all<A>(txn: &DatabaseTransaction, rows: Vec<A>) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let batch: Vec<A> = rows.by_ref().take(BATCH_ROWS).collect();
        <A::Entity as EntityTrait>::insert_many(batch)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

struct MenuEntry {
    id: i64,
    name: String,
    price: i64,
}

struct Seeder<'a> {
    txn: &'a DatabaseTransaction,
    scale: i64,
    rng: fastrand::Rng,
    now: DateTime<Utc>,
    /// Each restaurant's menu items, by restaurant index.
    menus: Vec<Vec<MenuEntry>>,
    counts: SeedCounts,
}

impl<'a> Seeder<'a> {
    fn new(txn: &'a DatabaseTransaction, scale: i64) -> Self {
        Self {
            txn,
            scale,
            rng: fastrand::Rng::with_seed(20_261_101),
            now: Utc
                .with_ymd_and_hms(2026, 11, 1, 12, 0, 0)
                .single()
                .expect("a valid date"),
            menus: Vec::new(),
            counts: SeedCounts::default(),
        }
    }

    fn restaurants(&self) -> i64 {
        RESTAURANTS_PER_SCALE * self.scale
    }

    /// User ids: 1 admin, 2 demo customer, 3 demo courier, then one owner per restaurant
    /// (4 is the demo owner), then couriers, then customers.
    fn owner_id(restaurant_index: i64) -> i64 {
        4 + restaurant_index
    }

    fn first_courier_id(&self) -> i64 {
        4 + self.restaurants()
    }

    fn first_customer_id(&self) -> i64 {
        self.first_courier_id() + COURIERS_PER_SCALE * self.scale
    }

    fn users_total(&self) -> i64 {
        USERS_PER_SCALE * self.scale
    }

    async fn run(mut self) -> Result<SeedCounts, DbErr> {
        self.users().await?;
        self.restaurants_and_menus().await?;
        self.orders().await?;
        // Ratings follow from the reviews just written.
        self.txn
            .execute_unprepared(
                "UPDATE restaurants SET \
                 rating_sum = (SELECT COALESCE(SUM(rating), 0) FROM reviews WHERE reviews.restaurant_id = restaurants.id), \
                 rating_count = (SELECT COUNT(*) FROM reviews WHERE reviews.restaurant_id = restaurants.id)",
            )
            .await?;
        Ok(self.counts)
    }

    fn person_name(&mut self, id: i64) -> String {
        let first = FIRST_NAMES[(id as usize * 7) % FIRST_NAMES.len()];
        let last = LAST_NAMES[self.rng.usize(..LAST_NAMES.len())];
        format!("{first} {last}")
    }

    async fn users(&mut self) -> Result<(), DbErr> {
        let mut rows = Vec::new();
        for id in 1..=self.users_total() {
            let (name, email, roles) = match id {
                1 => (
                    "Ada Admin".to_owned(),
                    DEMO_ADMIN.to_owned(),
                    json!(["admin", "customer"]),
                ),
                2 => (
                    "Casey Customer".to_owned(),
                    DEMO_CUSTOMER.to_owned(),
                    json!(["customer"]),
                ),
                3 => (
                    "Cory Courier".to_owned(),
                    DEMO_COURIER.to_owned(),
                    json!(["courier"]),
                ),
                4 => (
                    "Olivia Owner".to_owned(),
                    DEMO_OWNER.to_owned(),
                    json!(["customer"]),
                ),
                id if id >= self.first_courier_id() && id < self.first_customer_id() => (
                    self.person_name(id),
                    format!("courier{id}@example.test"),
                    json!(["courier"]),
                ),
                id => (
                    self.person_name(id),
                    format!("user{id}@example.test"),
                    json!(["customer"]),
                ),
            };
            let created = self.now - Duration::days(400) + Duration::minutes(id);
            rows.push(
                user::Model {
                    id,
                    display_name: name,
                    email: Some(email),
                    roles,
                    created_at: created,
                    updated_at: created,
                    roles_changed_at: None,
                }
                .into_active_model(),
            );
        }
        self.counts.users = rows.len();
        insert_all(self.txn, rows).await
    }

    fn opening_hours(restaurant_id: i64, index: i64) -> Vec<opening_hours::ActiveModel> {
        const DAY: i32 = 1440;
        let periods: Vec<(i32, i32)> = match index % 5 {
            // Open around the clock, so the demo always has somewhere to order from.
            0 => (0..7).map(|d| (d * DAY, d * DAY + DAY)).collect(),
            1 | 2 => (0..7)
                .map(|d| (d * DAY + 11 * 60, d * DAY + 22 * 60))
                .collect(),
            3 => (0..6)
                .flat_map(|d| {
                    [
                        (d * DAY + 12 * 60, d * DAY + 15 * 60),
                        (d * DAY + 18 * 60, d * DAY + 23 * 60),
                    ]
                })
                .collect(),
            // Late nights: until 02:00, so Sunday's period wraps into Monday.
            _ => {
                let mut periods: Vec<(i32, i32)> = (0..6)
                    .map(|d| (d * DAY + 17 * 60, d * DAY + DAY + 120))
                    .collect();
                periods.push((6 * DAY + 17 * 60, 7 * DAY));
                periods.insert(0, (0, 120));
                periods
            }
        };
        periods
            .into_iter()
            .map(|(opens_at, closes_at)| {
                opening_hours::Model {
                    restaurant_id,
                    opens_at,
                    closes_at,
                }
                .into_active_model()
            })
            .collect()
    }

    fn price(&mut self, low: i64, high: i64) -> i64 {
        // Prices end in 0 or 90 cents, like real menus.
        let cents = self.rng.i64(low / 10..=high / 10) * 10;
        if self.rng.bool() {
            cents - cents % 100 + 90
        } else {
            cents
        }
    }

    fn dietary_tags(
        &mut self,
        cuisine: &Cuisine,
        dish: &str,
        category: usize,
    ) -> serde_json::Value {
        let mut tags = Vec::new();
        let lower = dish.to_lowercase();
        let has_meat = MEAT_WORDS.iter().any(|word| lower.contains(word));
        if !has_meat && (category == 4 || self.rng.u8(..10) < 3) {
            tags.push("vegetarian");
            if category == 4 || self.rng.u8(..10) < 4 {
                tags.push("vegan");
            }
        }
        if self.rng.u8(..10) < 2 {
            tags.push("gluten_free");
        }
        if cuisine.spicy && category == 1 && self.rng.u8(..10) < 4 {
            tags.push("spicy");
        }
        json!(tags)
    }

    async fn restaurants_and_menus(&mut self) -> Result<(), DbErr> {
        let mut restaurants = Vec::new();
        let mut cuisines = Vec::new();
        let mut hours = Vec::new();
        let mut staff = Vec::new();
        let mut categories = Vec::new();
        let mut items = Vec::new();
        let (mut groups, mut options) = (Vec::new(), Vec::new());
        let (mut category_id, mut item_id) = (0_i64, 0_i64);
        let (mut group_id, mut option_id) = (0_i64, 0_i64);
        for index in 0..self.restaurants() {
            let id = index + 1;
            let cuisine = &CUISINES[(index as usize / 2) % CUISINES.len()];
            let base = cuisine.names[index as usize % 2];
            let round = index / RESTAURANTS_PER_SCALE;
            let (name, slug) = if round == 0 {
                (base.to_owned(), slugify(base))
            } else {
                let district = DISTRICTS[round as usize % DISTRICTS.len()];
                (
                    format!("{base} {district}"),
                    format!("{}-{round}", slugify(base)),
                )
            };
            let latitude = CITY_CENTER.0 + self.rng.f64() * 0.16 - 0.08;
            let longitude = CITY_CENTER.1 + self.rng.f64() * 0.26 - 0.13;
            let street = STREETS[self.rng.usize(..STREETS.len())];
            let created = self.now - Duration::days(380) + Duration::hours(index);
            restaurants.push(
                restaurant::Model {
                    id,
                    owner_id: Self::owner_id(index),
                    slug,
                    name,
                    description: cuisine.blurb.to_owned(),
                    address: format!("{street} {}, Berlin", self.rng.u32(1..200)),
                    latitude,
                    longitude,
                    utc_offset_minutes: crate::services::restaurants::offset_minutes(
                        crate::services::restaurants::zone(TIME_ZONE),
                        self.now,
                    ),
                    is_open: index == 0 || self.rng.u8(..10) != 0,
                    currency: "EUR".into(),
                    delivery_fee: self.price(99, 499),
                    rating_sum: 0,
                    rating_count: 0,
                    created_at: created,
                    updated_at: created,
                    delivery_radius_m: DELIVERY_RADIUS_M,
                    preparation_minutes: PREPARATION_MINUTES,
                    time_zone: TIME_ZONE.into(),
                    minimum_order: 0,
                    paused_until: None,
                    phone: Some(format!("+49 30 {:07}", 1_000_000 + id)),
                }
                .into_active_model(),
            );
            for tag in cuisine.tags {
                cuisines.push(
                    restaurant_cuisine::Model {
                        restaurant_id: id,
                        cuisine: (*tag).to_owned(),
                    }
                    .into_active_model(),
                );
            }
            hours.extend(Self::opening_hours(id, index));
            staff.push(
                restaurant_staff::Model {
                    restaurant_id: id,
                    user_id: Self::owner_id(index),
                    created_at: created,
                }
                .into_active_model(),
            );
            let sections: [(&str, &[&str], (i64, i64)); 5] = [
                ("Starters", cuisine.starters, (450, 950)),
                ("Mains", cuisine.mains, (990, 2490)),
                ("Sides", SIDES, (300, 550)),
                ("Desserts", cuisine.desserts, (450, 850)),
                ("Drinks", DRINKS, (250, 650)),
            ];
            let mut menu = Vec::new();
            for (position, (section, dishes, (low, high))) in sections.into_iter().enumerate() {
                category_id += 1;
                categories.push(
                    menu_category::Model {
                        id: category_id,
                        restaurant_id: id,
                        name: section.to_owned(),
                        position: position as i32,
                        created_at: created,
                        deleted_at: None,
                        external_id: None,
                    }
                    .into_active_model(),
                );
                for (item_position, dish) in dishes.iter().enumerate() {
                    item_id += 1;
                    let price = self.price(low, high);
                    let tags = self.dietary_tags(cuisine, dish, position);
                    let available = self.rng.u8(..20) != 0;
                    let image_url = self
                        .rng
                        .bool()
                        .then(|| format!("https://images.dishpatch.test/menu-items/{item_id}.jpg"));
                    items.push(
                        menu_item::Model {
                            id: item_id,
                            restaurant_id: id,
                            category_id,
                            name: (*dish).to_owned(),
                            description: format!("{dish}, made to order."),
                            price_amount: price,
                            currency: "EUR".into(),
                            is_available: available,
                            dietary_tags: tags,
                            image_url,
                            position: item_position as i32,
                            deleted_at: None,
                            created_at: created,
                            updated_at: created,
                            external_id: None,
                            allergens: json!(match section {
                                "Mains" | "Starters" => vec!["gluten", "milk"],
                                "Desserts" => vec!["eggs", "milk"],
                                _ => Vec::new(),
                            }),
                        }
                        .into_active_model(),
                    );
                    // Optional choices (so every existing cart stays valid): extras on mains,
                    // how to serve a drink.
                    let choices: Option<Choices> = match section {
                        "Mains" => Some((
                            "Extras",
                            2,
                            &[("Extra cheese", 150), ("Side salad", 250), ("Chili oil", 0)],
                        )),
                        "Drinks" => Some(("Serve with", 1, &[("Ice", 0), ("Lemon", 0)])),
                        _ => None,
                    };
                    if let Some((group_name, most, choices)) = choices {
                        group_id += 1;
                        groups.push(
                            menu_option_group::Model {
                                id: group_id,
                                restaurant_id: id,
                                menu_item_id: item_id,
                                name: group_name.to_owned(),
                                min_choices: 0,
                                max_choices: most,
                                position: 0,
                                external_id: None,
                                created_at: created,
                                updated_at: created,
                            }
                            .into_active_model(),
                        );
                        for (option_position, (option_name, delta)) in choices.iter().enumerate() {
                            option_id += 1;
                            options.push(
                                menu_option::Model {
                                    id: option_id,
                                    group_id,
                                    menu_item_id: item_id,
                                    name: (*option_name).to_owned(),
                                    price_delta: *delta,
                                    is_available: true,
                                    position: option_position as i32,
                                    external_id: None,
                                }
                                .into_active_model(),
                            );
                        }
                    }
                    if available {
                        menu.push(MenuEntry {
                            id: item_id,
                            name: (*dish).to_owned(),
                            price,
                        });
                    }
                }
            }
            self.menus.push(menu);
        }
        self.counts.restaurants = restaurants.len();
        self.counts.menu_items = items.len();
        insert_all(self.txn, restaurants).await?;
        insert_all(self.txn, cuisines).await?;
        insert_all(self.txn, hours).await?;
        insert_all(self.txn, staff).await?;
        insert_all(self.txn, categories).await?;
        insert_all(self.txn, items).await?;
        insert_all(self.txn, groups).await?;
        insert_all(self.txn, options).await
    }

    fn random_status(&mut self) -> OrderStatus {
        match self.rng.u8(..100) {
            0..=79 => OrderStatus::Delivered,
            80..=85 => OrderStatus::Cancelled,
            86..=89 => OrderStatus::Rejected,
            90..=91 => OrderStatus::Placed,
            92..=93 => OrderStatus::Accepted,
            94..=95 => OrderStatus::Preparing,
            96..=97 => OrderStatus::ReadyForPickup,
            _ => OrderStatus::PickedUp,
        }
    }

    async fn orders(&mut self) -> Result<(), DbErr> {
        let total = ORDERS_PER_SCALE * self.scale;
        let customers = self.first_customer_id()..=self.users_total();
        let couriers = self.first_courier_id()..self.first_customer_id();
        let mut batch = OrderBatch::default();
        let (mut item_id, mut event_id, mut delivery_id, mut review_id) = (0, 0, 0, 0);
        for id in 1..=total {
            // The demo customer has a history too.
            let customer_id = if id % 50 == 1 {
                2
            } else {
                self.rng.i64(customers.clone())
            };
            let restaurant_index = self.rng.usize(..self.menus.len());
            let status = self.random_status();
            // Orders come in over the last 90 days, in id order as they would in production.
            let placed_at =
                self.now - Duration::days(90) + Duration::seconds(id * 90 * 24 * 3600 / total);
            let mut subtotal = 0;
            for _ in 0..self.rng.usize(1..=4) {
                let menu = &self.menus[restaurant_index];
                let entry = &menu[self.rng.usize(..menu.len())];
                let quantity = self.rng.i32(1..=3);
                subtotal += entry.price * i64::from(quantity);
                item_id += 1;
                batch.items.push(
                    order_item::Model {
                        id: item_id,
                        order_id: id,
                        menu_item_id: entry.id,
                        name: entry.name.clone(),
                        unit_price: entry.price,
                        quantity,
                        note: (self.rng.u8(..10) == 0).then(|| "No onions, please".to_owned()),
                        options: json!([]),
                    }
                    .into_active_model(),
                );
            }
            let fee = 299;
            let path = lifecycle_path(status);
            let owner = Self::owner_id(restaurant_index as i64);
            let courier = self.rng.i64(couriers.clone());
            let mut at = placed_at;
            let mut from = None;
            let mut version = 0;
            let delivered_by_courier =
                matches!(status, OrderStatus::PickedUp | OrderStatus::Delivered);
            for step in &path {
                let actor = match step {
                    OrderStatus::Placed | OrderStatus::Cancelled => customer_id,
                    OrderStatus::PickedUp | OrderStatus::Delivered => courier,
                    _ => owner,
                };
                // A courier claims the delivery between ready and picked up: a change too.
                let claim = (delivered_by_courier && *step == OrderStatus::PickedUp).then_some((
                    courier,
                    Some(OrderStatus::ReadyForPickup),
                    OrderStatus::ReadyForPickup,
                    OrderEventKind::DeliveryClaimed,
                ));
                let moved = (actor, from, *step, OrderEventKind::StatusChanged);
                for (actor, from_status, to_status, kind) in claim.into_iter().chain([moved]) {
                    event_id += 1;
                    version += 1;
                    batch.events.push(
                        order_event::Model {
                            id: event_id,
                            order_id: id,
                            actor_id: Some(actor),
                            from_status,
                            to_status,
                            reason: match to_status {
                                OrderStatus::Rejected => Some("Kitchen is too busy".into()),
                                OrderStatus::Cancelled => Some("Changed my mind".into()),
                                _ => None,
                            },
                            created_at: at,
                            version,
                            kind,
                        }
                        .into_active_model(),
                    );
                }
                from = Some(*step);
                at += Duration::minutes(self.rng.i64(3..15));
            }
            let (latitude, longitude) = (
                CITY_CENTER.0 + self.rng.f64() * 0.16 - 0.08,
                CITY_CENTER.1 + self.rng.f64() * 0.26 - 0.13,
            );
            if delivered_by_courier {
                delivery_id += 1;
                let delivered = status == OrderStatus::Delivered;
                batch.deliveries.push(
                    delivery::Model {
                        id: delivery_id,
                        order_id: id,
                        courier_id: courier,
                        status: if delivered {
                            DeliveryStatus::Delivered
                        } else {
                            DeliveryStatus::PickedUp
                        },
                        last_latitude: Some(latitude),
                        last_longitude: Some(longitude),
                        location_updated_at: Some(at),
                        claimed_at: placed_at + Duration::minutes(20),
                        picked_up_at: Some(placed_at + Duration::minutes(30)),
                        delivered_at: delivered.then_some(at),
                    }
                    .into_active_model(),
                );
            }
            if status == OrderStatus::Delivered && self.rng.u8(..20) != 0 {
                review_id += 1;
                let rating = [5, 5, 5, 4, 4, 4, 3, 2, 1][self.rng.usize(..9)];
                batch.reviews.push(
                    review::Model {
                        id: review_id,
                        order_id: id,
                        restaurant_id: restaurant_index as i64 + 1,
                        author_id: customer_id,
                        rating,
                        body: REVIEW_BODIES[self.rng.usize(..REVIEW_BODIES.len())].to_owned(),
                        created_at: at + Duration::hours(1),
                    }
                    .into_active_model(),
                );
            }
            batch.orders.push(
                order::Model {
                    id,
                    customer_id,
                    restaurant_id: restaurant_index as i64 + 1,
                    status,
                    subtotal,
                    delivery_fee: fee,
                    total: subtotal + fee,
                    currency: "EUR".into(),
                    delivery_address: format!(
                        "{} {}, Berlin",
                        STREETS[self.rng.usize(..STREETS.len())],
                        self.rng.u32(1..200)
                    ),
                    delivery_latitude: latitude,
                    delivery_longitude: longitude,
                    idempotency_key: format!("seed-{id}"),
                    request_fingerprint: format!("seed-{id}"),
                    version,
                    created_at: placed_at,
                    updated_at: at,
                    delivery_notes: None,
                }
                .into_active_model(),
            );
            if batch.orders.len() >= BATCH_ROWS * 4 {
                batch.flush(self.txn, &mut self.counts).await?;
            }
        }
        batch.flush(self.txn, &mut self.counts).await
    }
}

/// Rows of a run of orders, written together so memory stays flat at any scale.
#[derive(Default)]
struct OrderBatch {
    orders: Vec<order::ActiveModel>,
    items: Vec<order_item::ActiveModel>,
    events: Vec<order_event::ActiveModel>,
    deliveries: Vec<delivery::ActiveModel>,
    reviews: Vec<review::ActiveModel>,
}

impl OrderBatch {
    async fn flush(
        &mut self,
        txn: &DatabaseTransaction,
        counts: &mut SeedCounts,
    ) -> Result<(), DbErr> {
        counts.orders += self.orders.len();
        counts.reviews += self.reviews.len();
        insert_all(txn, std::mem::take(&mut self.orders)).await?;
        insert_all(txn, std::mem::take(&mut self.items)).await?;
        insert_all(txn, std::mem::take(&mut self.events)).await?;
        insert_all(txn, std::mem::take(&mut self.deliveries)).await?;
        insert_all(txn, std::mem::take(&mut self.reviews)).await
    }
}

/// The statuses an order went through to reach `status`, in order.
fn lifecycle_path(status: OrderStatus) -> Vec<OrderStatus> {
    use OrderStatus::{
        Accepted, Cancelled, Delivered, PickedUp, Placed, Preparing, ReadyForPickup, Rejected,
    };
    let forward = [
        Placed,
        Accepted,
        Preparing,
        ReadyForPickup,
        PickedUp,
        Delivered,
    ];
    match status {
        Rejected => vec![Placed, Rejected],
        Cancelled => vec![Placed, Cancelled],
        status => {
            let end = forward.iter().position(|s| *s == status).unwrap_or(0);
            forward[..=end].to_vec()
        }
    }
}

fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_moves_forward() {
        for status in [
            OrderStatus::Delivered,
            OrderStatus::Rejected,
            OrderStatus::Cancelled,
            OrderStatus::Preparing,
        ] {
            let path = lifecycle_path(status);
            assert_eq!(path.first(), Some(&OrderStatus::Placed));
            assert_eq!(path.last(), Some(&status));
            assert!(path.windows(2).all(|w| w[0].can_move_to(w[1])));
        }
    }

    #[test]
    fn slugs_are_url_friendly() {
        assert_eq!(slugify("Smokehouse 66"), "smokehouse-66");
        assert_eq!(slugify("Taqueria El Sol"), "taqueria-el-sol");
    }
}
