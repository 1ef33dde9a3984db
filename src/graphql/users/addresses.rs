//! `Address`: a customer's saved delivery addresses, and the mutations that keep them.

use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use entities::address;
use sea_orm::DatabaseConnection;

use crate::{
    auth::guards::viewer,
    graphql::{
        common::{GeoPoint, GeoPointInput, Timestamp},
        payloads::UserError,
        relay::{GlobalId, NodeKind},
    },
    services::{
        InputError,
        addresses::{self as service, AddressFields},
    },
};

/// A delivery address a customer saved, to choose by id at checkout (`placeOrder`'s
/// `addressId`). Private: its owner and admins only. An order keeps a copy, so changing or
/// deleting an address changes no order.
#[derive(Clone)]
pub struct Address(pub Arc<address::Model>);

/// A delivery address a customer saved, to choose by id at checkout (`placeOrder`'s
/// `addressId`). Private: its owner and admins only. An order keeps a copy, so changing or
/// deleting an address changes no order.
#[Object]
impl Address {
    /// Global ID of the address.
    pub async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::Address, self.0.id)
    }

    /// The customer's name for it ("Home", "Office").
    async fn label(&self) -> &str {
        &self.0.label
    }

    /// Street name.
    async fn street(&self) -> &str {
        &self.0.street
    }

    /// House number (with any suffix, "12b").
    async fn house_number(&self) -> &str {
        &self.0.house_number
    }

    /// Postal code.
    async fn postal_code(&self) -> &str {
        &self.0.postal_code
    }

    /// City.
    async fn city(&self) -> &str {
        &self.0.city
    }

    /// For the courier: floor, door code, where to ring. Orders placed with the address carry
    /// them as `deliveryNotes`.
    async fn courier_notes(&self) -> Option<&str> {
        self.0.courier_notes.as_deref()
    }

    /// Where it is on the map (where couriers ride to).
    async fn location(&self) -> GeoPoint {
        GeoPoint {
            latitude: self.0.latitude,
            longitude: self.0.longitude,
        }
    }

    /// The address on one line, as an order placed with it shows it.
    async fn formatted(&self) -> String {
        self.0.one_line()
    }

    /// When it was saved.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }
}

/// A new saved address.
#[derive(InputObject)]
pub struct CreateAddressInput {
    /// The customer's name for it, 1 to 50 characters.
    pub label: String,
    /// Street name, 1 to 200 characters.
    pub street: String,
    /// House number, 1 to 20 characters.
    pub house_number: String,
    /// Postal code, 1 to 20 characters.
    pub postal_code: String,
    /// City, 1 to 100 characters.
    pub city: String,
    /// For the courier, at most 300 characters.
    pub courier_notes: Option<String>,
    /// Where it is on the map.
    pub location: GeoPointInput,
}

/// Changes to a saved address; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateAddressInput {
    /// The address.
    pub id: ID,
    /// 1 to 50 characters.
    pub label: Option<String>,
    /// 1 to 200 characters.
    pub street: Option<String>,
    /// 1 to 20 characters.
    pub house_number: Option<String>,
    /// 1 to 20 characters.
    pub postal_code: Option<String>,
    /// 1 to 100 characters.
    pub city: Option<String>,
    /// At most 300 characters; empty clears them.
    pub courier_notes: Option<String>,
    /// Where it is on the map.
    pub location: Option<GeoPointInput>,
}

/// Which address.
#[derive(InputObject)]
pub struct DeleteAddressInput {
    /// The address.
    pub id: ID,
}

/// The saved address.
#[derive(SimpleObject)]
pub struct AddressPayload {
    /// The address; null on a user error.
    pub address: Option<Address>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// The deleted address.
#[derive(SimpleObject)]
pub struct DeleteAddressPayload {
    /// ID of the deleted address; null on a user error.
    pub deleted_id: Option<ID>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

fn payload(result: Result<address::Model, InputError>) -> AddressPayload {
    match result {
        Ok(saved) => AddressPayload {
            address: Some(Address(Arc::new(saved))),
            user_errors: Vec::new(),
        },
        Err(error) => AddressPayload {
            address: None,
            user_errors: vec![error.into()],
        },
    }
}

/// Keeping one's delivery addresses (a signed-in user, for themselves).
#[derive(Default)]
pub struct AddressMutation;

#[Object]
impl AddressMutation {
    /// Saves a delivery address for the viewer (at most 20).
    async fn create_address(
        &self,
        ctx: &Context<'_>,
        input: CreateAddressInput,
    ) -> Result<AddressPayload> {
        let fields = AddressFields {
            label: Some(input.label),
            street: Some(input.street),
            house_number: Some(input.house_number),
            postal_code: Some(input.postal_code),
            city: Some(input.city),
            courier_notes: Some(input.courier_notes),
            location: Some((input.location.latitude, input.location.longitude)),
        };
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(payload(
            service::create(db, viewer(ctx)?, &fields, Utc::now()).await?,
        ))
    }

    /// Changes one of the viewer's addresses.
    async fn update_address(
        &self,
        ctx: &Context<'_>,
        input: UpdateAddressInput,
    ) -> Result<AddressPayload> {
        let id = GlobalId::decode_as(&input.id, NodeKind::Address)?;
        let fields = AddressFields {
            label: input.label,
            street: input.street,
            house_number: input.house_number,
            postal_code: input.postal_code,
            city: input.city,
            courier_notes: input.courier_notes.map(Some),
            location: input.location.map(|l| (l.latitude, l.longitude)),
        };
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(payload(
            service::update(db, viewer(ctx)?, id, &fields, Utc::now()).await?,
        ))
    }

    /// Deletes one of the viewer's addresses.
    async fn delete_address(
        &self,
        ctx: &Context<'_>,
        input: DeleteAddressInput,
    ) -> Result<DeleteAddressPayload> {
        let id = GlobalId::decode_as(&input.id, NodeKind::Address)?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(match service::delete(db, viewer(ctx)?, id).await? {
            Ok(id) => DeleteAddressPayload {
                deleted_id: Some(GlobalId::encode(NodeKind::Address, id)),
                user_errors: Vec::new(),
            },
            Err(error) => DeleteAddressPayload {
                deleted_id: None,
                user_errors: vec![error.into()],
            },
        })
    }
}

/// The address `id` if the viewer owns it (or is an admin).
pub async fn load_address(ctx: &Context<'_>, id: i64) -> Result<Option<Address>> {
    use sea_orm::EntityTrait;
    let viewer = viewer(ctx)?;
    if viewer.user().is_none() {
        return Ok(None);
    }
    let db = ctx.data::<DatabaseConnection>()?;
    Ok(address::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|saved| viewer.may_read_private_of(saved.user_id).is_ok())
        .map(|saved| Address(Arc::new(saved))))
}
