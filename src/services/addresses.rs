//! Customers' saved delivery addresses: theirs alone (and admins'), chosen by id at checkout.
//! An order copies what it needs (the address on one line, the location, the courier's notes),
//! so changing or deleting an address never changes an order.

use chrono::{DateTime, Utc};
use entities::address;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::LockType,
};

use super::{ErrorCode, InputError, ServiceResult, bounded_text, location, lock_user};
use crate::{auth::Viewer, db::begin_write, error::AppResult};

/// Most addresses one customer keeps.
pub const MAX_ADDRESSES_PER_USER: u64 = 20;

/// The fields of an address, as given.
#[derive(Debug, Clone, Default)]
pub struct AddressFields {
    pub label: Option<String>,
    pub street: Option<String>,
    pub house_number: Option<String>,
    pub postal_code: Option<String>,
    pub city: Option<String>,
    /// `Some(None)` clears the notes.
    pub courier_notes: Option<Option<String>>,
    pub location: Option<(f64, f64)>,
}

/// Checks one text field: trimmed, 1 to `max` characters (0 to `max` when `optional`).
fn text(field: &str, value: &str, max: usize, optional: bool) -> Result<String, InputError> {
    bounded_text(field, value, usize::from(!optional), max)
}

/// Applies `fields` to `model`, checking each.
fn apply(model: &mut address::ActiveModel, fields: &AddressFields) -> Result<(), InputError> {
    if let Some(label) = &fields.label {
        model.label = Set(text("label", label, 50, false)?);
    }
    if let Some(street) = &fields.street {
        model.street = Set(text("street", street, 200, false)?);
    }
    if let Some(number) = &fields.house_number {
        model.house_number = Set(text("houseNumber", number, 20, false)?);
    }
    if let Some(code) = &fields.postal_code {
        model.postal_code = Set(text("postalCode", code, 20, false)?);
    }
    if let Some(city) = &fields.city {
        model.city = Set(text("city", city, 100, false)?);
    }
    if let Some(notes) = &fields.courier_notes {
        model.courier_notes = Set(match notes {
            Some(notes) => Some(text("courierNotes", notes, 300, true)?).filter(|n| !n.is_empty()),
            None => None,
        });
    }
    if let Some((latitude, longitude)) = fields.location {
        location("location", latitude, longitude)?;
        model.latitude = Set(latitude);
        model.longitude = Set(longitude);
    }
    Ok(())
}

/// Saves a new address for the viewer; every field but the notes is needed.
pub async fn create(
    db: &DatabaseConnection,
    viewer: &Viewer,
    fields: &AddressFields,
    now: DateTime<Utc>,
) -> ServiceResult<address::Model> {
    let user_id = viewer.require_user()?.id;
    for (name, given) in [
        ("label", fields.label.is_some()),
        ("street", fields.street.is_some()),
        ("houseNumber", fields.house_number.is_some()),
        ("postalCode", fields.postal_code.is_some()),
        ("city", fields.city.is_some()),
        ("location", fields.location.is_some()),
    ] {
        if !given {
            return Ok(Err(InputError::new(name, ErrorCode::Invalid, "needed")));
        }
    }
    let mut model = address::ActiveModel {
        user_id: Set(user_id),
        courier_notes: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    if let Err(error) = apply(&mut model, fields) {
        return Ok(Err(error));
    }
    let txn = begin_write(db).await?;
    lock_user(&txn, user_id).await?;
    let count = address::Entity::find()
        .filter(address::Column::UserId.eq(user_id))
        .count(&txn)
        .await?;
    if count >= MAX_ADDRESSES_PER_USER {
        return Ok(Err(InputError::new(
            "label",
            ErrorCode::LimitReached,
            format!("at most {MAX_ADDRESSES_PER_USER} addresses; delete one first"),
        )));
    }
    let saved = model.insert(&txn).await?;
    txn.commit().await?;
    Ok(Ok(saved))
}

/// The address `id` if it is `user_id`'s.
pub async fn find_owned(
    db: &impl ConnectionTrait,
    user_id: i64,
    id: i64,
) -> AppResult<Option<address::Model>> {
    Ok(address::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|address| address.user_id == user_id))
}

fn not_found() -> InputError {
    InputError::new("id", ErrorCode::NotFound, "no such address")
}

/// Changes one of the viewer's addresses (orders placed with it keep their copy).
pub async fn update(
    db: &DatabaseConnection,
    viewer: &Viewer,
    id: i64,
    fields: &AddressFields,
    now: DateTime<Utc>,
) -> ServiceResult<address::Model> {
    let user_id = viewer.require_user()?.id;
    // Read and written in one transaction, the row locked (on PostgreSQL; SQLite's writer is
    // alone): an address deleted meanwhile is not found, rather than failing the update.
    let txn = begin_write(db).await?;
    let found = address::Entity::find_by_id(id)
        .lock(LockType::Update)
        .one(&txn)
        .await?
        .filter(|address| address.user_id == user_id);
    let Some(found) = found else {
        return Ok(Err(not_found()));
    };
    let mut model: address::ActiveModel = found.into();
    if let Err(error) = apply(&mut model, fields) {
        return Ok(Err(error));
    }
    model.updated_at = Set(now);
    let saved = model.update(&txn).await?;
    txn.commit().await?;
    Ok(Ok(saved))
}

/// Deletes one of the viewer's addresses; returns its id.
pub async fn delete(db: &DatabaseConnection, viewer: &Viewer, id: i64) -> ServiceResult<i64> {
    let user_id = viewer.require_user()?.id;
    let deleted = address::Entity::delete_many()
        .filter(address::Column::Id.eq(id))
        .filter(address::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(if deleted.rows_affected == 0 {
        Err(not_found())
    } else {
        Ok(id)
    })
}

/// `user_id`'s addresses, oldest first.
pub async fn list(db: &DatabaseConnection, user_id: i64) -> AppResult<Vec<address::Model>> {
    Ok(address::Entity::find()
        .filter(address::Column::UserId.eq(user_id))
        .order_by_asc(address::Column::Id)
        .all(db)
        .await?)
}
