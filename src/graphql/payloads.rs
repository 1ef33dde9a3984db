//! What every mutation payload shares: errors the user can fix.

use async_graphql::{Enum, SimpleObject};

use crate::services::InputError;

/// A problem with the input that the user can fix; the mutation changed nothing.
#[derive(Debug, Clone, SimpleObject)]
pub struct UserError {
    /// Path to the input field at fault, from the mutation's argument down, with list entries
    /// by their index: `["input", "deliveryAddress"]`, `["input", "lines", "2", "quantity"]`.
    pub field: Vec<String>,
    /// What is wrong, for people.
    pub message: String,
    /// What is wrong, for programs.
    pub code: UserErrorCode,
}

/// What is wrong with a mutation's input, for programs to switch on (the services' `ErrorCode`,
/// one to one). New codes may be added; clients should treat one they do not know like
/// `INVALID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::services::ErrorCode")]
pub enum UserErrorCode {
    /// A value is out of its range or has the wrong form; the message says which range.
    Invalid,
    /// What an id names does not exist, or the viewer may not see it.
    NotFound,
    /// A limit on how many of a thing may exist was reached (e.g. live API tokens).
    LimitReached,
    /// The order is not in a state from which this move is allowed.
    InvalidTransition,
    /// The order changed while the move was being made; reload it and try again.
    Conflict,
    /// Another courier already claimed the delivery.
    AlreadyClaimed,
    /// The order already has its review.
    AlreadyReviewed,
    /// The idempotency key was already used for a different order.
    IdempotencyKeyReused,
    /// An order line names an item that is not on the restaurant's menu.
    ItemNotFound,
    /// An order line names an item that is sold out.
    ItemUnavailable,
    /// The restaurant is not taking orders now.
    RestaurantClosed,
    /// The courier has not claimed this delivery.
    NotClaimed,
    /// The order has not been delivered yet.
    NotDelivered,
    /// The restaurant does not deliver to this location (`Restaurant.deliveryRadiusMeters`).
    OutsideDeliveryArea,
    /// The order's subtotal is below the restaurant's `minimumOrder`.
    BelowMinimumOrder,
    /// The restaurant paused taking orders; the message says until when (`pausedUntil`).
    RestaurantPaused,
    /// An order line's options do not fit the item's option groups: too few or too many
    /// chosen from a group (`minChoices`, `maxChoices`); the message names the group.
    InvalidOptions,
}

impl From<InputError> for UserError {
    fn from(error: InputError) -> Self {
        let mut field = Vec::with_capacity(error.field.len() + 1);
        field.push("input".to_owned());
        field.extend(error.field);
        Self {
            field,
            message: error.message,
            code: error.code.into(),
        }
    }
}
