//! Photos of menu items and restaurants (logo, cover): uploaded by the people who may change
//! the menu (items) or the settings (logo, cover). The upload is checked and re-encoded
//! ([`crate::media::process`]) before anything is written; its files are stored, then one
//! transaction swaps the row. A photo replaced or removed has its files deleted once no row
//! points at them; an upload that fails leaves no file and no row behind.

use chrono::{DateTime, Utc};
use entities::{image, menu_item};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, Statement,
    TransactionTrait, sea_query::Expr,
};
use serde_json::json;

use super::{ErrorCode, InputError, ServiceResult, bounded_text};
use crate::{
    auth::Viewer,
    db::{begin_write, begin_write_at},
    error::{AppError, AppResult},
    media::{Media, Rejected, Variant},
};

/// Longest alternative text.
pub const MAX_ALT_CHARS: usize = 300;

/// What a photo shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A menu item, by id.
    Item(i64),
    /// A restaurant's logo, by restaurant id.
    Logo(i64),
    /// A restaurant's cover picture, by restaurant id.
    Cover(i64),
}

impl Target {
    /// The stored `kind`.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Item(_) => "item",
            Self::Logo(_) => "logo",
            Self::Cover(_) => "cover",
        }
    }

    /// The input field naming the target, for user errors.
    fn field(self) -> &'static str {
        match self {
            Self::Item(_) => "menuItemId",
            Self::Logo(_) | Self::Cover(_) => "restaurantId",
        }
    }
}

/// The restaurant `target` belongs to, if `viewer` may change its photo (items: the menu's
/// people; logo and cover: the owner and admins; no viewer: the server itself, seeding);
/// `None` when the target does not exist.
async fn authorize(
    txn: &DatabaseTransaction,
    viewer: Option<&Viewer>,
    target: Target,
) -> AppResult<Option<i64>> {
    let Some(viewer) = viewer else {
        return Ok(match target {
            Target::Item(id) => super::menus::live_item(txn, id)
                .await?
                .map(|item| item.restaurant_id),
            Target::Logo(id) | Target::Cover(id) => Some(id),
        });
    };
    Ok(match target {
        Target::Item(id) => match super::menus::live_item(txn, id).await? {
            Some(item) => super::menus::authorize(txn, viewer, item.restaurant_id)
                .await?
                .map(|r| r.id),
            None => None,
        },
        Target::Logo(id) | Target::Cover(id) => {
            super::restaurant_settings::authorize(txn, viewer, id, false)
                .await?
                .map(|r| r.id)
        }
    })
}

fn not_found(target: Target) -> InputError {
    InputError::new(target.field(), ErrorCode::NotFound, "no such thing to show")
}

/// The row showing `target`, if any.
async fn current(txn: &DatabaseTransaction, target: Target) -> AppResult<Option<image::Model>> {
    let query = image::Entity::find().filter(image::Column::Kind.eq(target.kind()));
    let query = match target {
        Target::Item(id) => query.filter(image::Column::MenuItemId.eq(id)),
        Target::Logo(id) | Target::Cover(id) => query.filter(image::Column::RestaurantId.eq(id)),
    };
    Ok(query.one(txn).await?)
}

/// The variants a row lists.
pub fn variants(row: &image::Model) -> Vec<Variant> {
    serde_json::from_value(row.variants.clone()).unwrap_or_default()
}

/// Where clients fetch a variant: under `media.public_url` when set, else this server's
/// `/media/` path.
pub fn url(media: &Media, variant: &Variant) -> String {
    match &media.limits.public_url {
        Some(base) => format!("{}/{}", base.trim_end_matches('/'), variant.key),
        None => format!("/media/{}", variant.key),
    }
}

/// Holds the files of the upload `hash` until `txn` ends: [`collect`] deletes them only
/// while it holds them, and an upload stores them again while it holds them, just before its
/// row goes in ([`swap`]). So a photo removed at the moment the same bytes are uploaded for
/// something else never leaves the new row without its files. On SQLite a write transaction
/// already excludes every other one; PostgreSQL takes a transaction-scoped advisory lock on
/// the hash.
async fn hold(txn: &DatabaseTransaction, hash: &str) -> AppResult<()> {
    /// The first key of the lock, setting photos' locks apart from other advisory locks.
    const PHOTOS: i32 = 0x7068_6f74; // "phot"
    if txn.get_database_backend() == DbBackend::Postgres {
        // The first 32 bits of the SHA-256: two hashes sharing them only take turns.
        let key = hash
            .get(..8)
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .map_or(0, |bits| i32::from_be_bytes(bits.to_be_bytes()));
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1, $2)",
            [PHOTOS.into(), key.into()],
        ))
        .await?;
    }
    Ok(())
}

/// Deletes the files of the upload `hash` unless a row still shows it.
async fn collect(db: &DatabaseConnection, media: &Media, hash: &str, keys: &[String]) {
    if let Err(error) = try_collect(db, media, hash, keys).await {
        tracing::warn!(?error, hash, "cannot collect a photo's files");
    }
}

async fn try_collect(
    db: &DatabaseConnection,
    media: &Media,
    hash: &str,
    keys: &[String],
) -> AppResult<()> {
    // The count must see rows committed while the hold was waited for: on PostgreSQL that is
    // READ COMMITTED, whatever the server's default isolation.
    let txn = begin_write_at(db, Some(sea_orm::IsolationLevel::ReadCommitted)).await?;
    hold(&txn, hash).await?;
    let still = image::Entity::find()
        .filter(image::Column::Hash.eq(hash))
        .count(&txn)
        .await?;
    if still == 0 {
        for key in keys {
            if let Err(error) = media.store.delete(key).await {
                tracing::warn!(%error, key, "cannot delete a photo's file");
            }
        }
    }
    // Nothing was written: ending the transaction lets the hold go.
    txn.rollback().await?;
    Ok(())
}

/// Shows `bytes` (an uploaded file) for `target`, replacing what showed it before, as
/// `viewer` (`None`: the server itself, for the demo's photos).
pub async fn upload(
    db: &DatabaseConnection,
    media: &Media,
    viewer: Option<&Viewer>,
    target: Target,
    bytes: Vec<u8>,
    alt: &str,
    now: DateTime<Utc>,
) -> ServiceResult<image::Model> {
    let alt = match bounded_text("alt", alt, 0, MAX_ALT_CHARS) {
        Ok(alt) => alt,
        Err(error) => return Ok(Err(error)),
    };
    // Who may, before any work on the file.
    let check = db.begin().await?;
    let allowed = authorize(&check, viewer, target).await?;
    check.rollback().await?;
    if allowed.is_none() {
        return Ok(Err(not_found(target)));
    }
    let limits = media.limits.clone();
    let processed = tokio::task::spawn_blocking(move || crate::media::process(&bytes, &limits))
        .await
        .map_err(|error| AppError::Internal(anyhow::anyhow!("processing a photo: {error}")))?;
    let processed = match processed {
        Ok(processed) => processed,
        Err(rejected) => {
            let message = rejected.to_string();
            let code = match rejected {
                Rejected::TooLarge(_) | Rejected::TooManyPixels(_) => ErrorCode::LimitReached,
                Rejected::NotAnImage | Rejected::Unreadable => ErrorCode::Invalid,
            };
            return Ok(Err(InputError::new("file", code, message)));
        }
    };
    let keys: Vec<String> = processed
        .variants
        .iter()
        .map(|(v, _)| v.key.clone())
        .collect();
    for (variant, bytes) in &processed.variants {
        if let Err(error) = media.store.put(&variant.key, bytes).await {
            collect(db, media, &processed.hash, &keys).await;
            return Err(AppError::Internal(anyhow::anyhow!(
                "storing a photo: {error}"
            )));
        }
    }
    let result = swap(db, media, viewer, target, &processed, &alt, now).await;
    match result {
        Ok(Ok((row, old))) => {
            if let Some(old) = old
                && old.hash != row.hash
            {
                let old_keys: Vec<String> = variants(&old).into_iter().map(|v| v.key).collect();
                collect(db, media, &old.hash, &old_keys).await;
            }
            Ok(Ok(row))
        }
        other => {
            // Nothing committed: the new files go unless another row shows the same photo.
            collect(db, media, &processed.hash, &keys).await;
            other.map(|done| done.map(|(row, _)| row))
        }
    }
}

/// The transaction of an upload: the new row in, the old one out.
async fn swap(
    db: &DatabaseConnection,
    media: &Media,
    viewer: Option<&Viewer>,
    target: Target,
    processed: &crate::media::Processed,
    alt: &str,
    now: DateTime<Utc>,
) -> ServiceResult<(image::Model, Option<image::Model>)> {
    let txn = begin_write(db).await?;
    let Some(restaurant_id) = authorize(&txn, viewer, target).await? else {
        return Ok(Err(not_found(target)));
    };
    // The files were stored before the transaction; a photo collected since then with the
    // same bytes may have taken them away. Held, they stay until the row is in.
    hold(&txn, &processed.hash).await?;
    for (variant, bytes) in &processed.variants {
        media
            .store
            .put(&variant.key, bytes)
            .await
            .map_err(|error| AppError::Internal(anyhow::anyhow!("storing a photo: {error}")))?;
    }
    let old = current(&txn, target).await?;
    if let Some(old) = &old {
        image::Entity::delete_by_id(old.id).exec(&txn).await?;
    }
    let widest = &processed.variants.last().expect("at least one size").0;
    let variants: Vec<&Variant> = processed.variants.iter().map(|(v, _)| v).collect();
    let row = image::ActiveModel {
        restaurant_id: Set(restaurant_id),
        menu_item_id: Set(match target {
            Target::Item(id) => Some(id),
            _ => None,
        }),
        kind: Set(target.kind().to_owned()),
        hash: Set(processed.hash.clone()),
        width: Set(i32::try_from(widest.width).unwrap_or(i32::MAX)),
        height: Set(i32::try_from(widest.height).unwrap_or(i32::MAX)),
        alt: Set(alt.to_owned()),
        variants: Set(json!(variants)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    if let Target::Item(id) = target {
        show_on_item(&txn, restaurant_id, id, Some(url(media, widest)), now).await?;
    }
    txn.commit().await?;
    Ok(Ok((row, old)))
}

/// Keeps the deprecated `menu_items.image_url` pointing at the item's photo, and tells
/// webhooks the menu changed.
async fn show_on_item(
    txn: &DatabaseTransaction,
    restaurant_id: i64,
    item_id: i64,
    image_url: Option<String>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    menu_item::Entity::update_many()
        .col_expr(menu_item::Column::ImageUrl, Expr::value(image_url))
        .col_expr(menu_item::Column::UpdatedAt, Expr::value(now))
        .filter(menu_item::Column::Id.eq(item_id))
        .exec(txn)
        .await?;
    super::menus::changed(txn, restaurant_id, "item_photo_set", &[], &[item_id], now).await
}

/// Removes the photo showing `target`; returns the restaurant it belonged to (also when
/// there was none to remove).
pub async fn remove(
    db: &DatabaseConnection,
    media: &Media,
    viewer: &Viewer,
    target: Target,
    now: DateTime<Utc>,
) -> ServiceResult<i64> {
    let txn = begin_write(db).await?;
    let Some(restaurant_id) = authorize(&txn, Some(viewer), target).await? else {
        return Ok(Err(not_found(target)));
    };
    let old = current(&txn, target).await?;
    if let Some(old) = &old {
        image::Entity::delete_by_id(old.id).exec(&txn).await?;
        if let Target::Item(id) = target {
            show_on_item(&txn, restaurant_id, id, None, now).await?;
        }
    }
    txn.commit().await?;
    if let Some(old) = old {
        let keys: Vec<String> = variants(&old).into_iter().map(|v| v.key).collect();
        collect(db, media, &old.hash, &keys).await;
    }
    Ok(Ok(restaurant_id))
}
