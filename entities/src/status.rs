//! Status enums stored as text, so that both SQLite and PostgreSQL read them the same way.

use sea_orm::entity::prelude::*;

/// Where an order is in its lifecycle. Only forward moves are allowed (see `can_move_to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
pub enum OrderStatus {
    #[sea_orm(string_value = "PLACED")]
    Placed,
    #[sea_orm(string_value = "ACCEPTED")]
    Accepted,
    #[sea_orm(string_value = "REJECTED")]
    Rejected,
    #[sea_orm(string_value = "PREPARING")]
    Preparing,
    #[sea_orm(string_value = "READY_FOR_PICKUP")]
    ReadyForPickup,
    #[sea_orm(string_value = "PICKED_UP")]
    PickedUp,
    #[sea_orm(string_value = "DELIVERED")]
    Delivered,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

impl OrderStatus {
    /// Whether the lifecycle allows moving from `self` to `next`.
    pub fn can_move_to(self, next: Self) -> bool {
        use OrderStatus::{
            Accepted, Cancelled, Delivered, PickedUp, Placed, Preparing, ReadyForPickup, Rejected,
        };
        matches!(
            (self, next),
            (Placed, Accepted | Rejected | Cancelled)
                | (Accepted, Preparing | Cancelled)
                | (Preparing, ReadyForPickup | Cancelled)
                | (ReadyForPickup, PickedUp | Cancelled)
                | (PickedUp, Delivered)
        )
    }

    /// Whether no further move is possible.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Rejected | Self::Delivered | Self::Cancelled)
    }
}

/// Where a delivery is, from the courier's claim to the customer's door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
pub enum DeliveryStatus {
    #[sea_orm(string_value = "CLAIMED")]
    Claimed,
    #[sea_orm(string_value = "PICKED_UP")]
    PickedUp,
    #[sea_orm(string_value = "DELIVERED")]
    Delivered,
    /// The order was cancelled after the courier claimed it; the courier keeps it in their
    /// history.
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

/// What kind of change an order event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(24))")]
pub enum OrderEventKind {
    /// The order was placed (no status before) or moved to another status.
    #[sea_orm(string_value = "STATUS_CHANGED")]
    StatusChanged,
    /// A courier claimed the delivery; the status stays ready for pickup.
    #[sea_orm(string_value = "DELIVERY_CLAIMED")]
    DeliveryClaimed,
}

/// Outcome of one webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum WebhookDeliveryStatus {
    #[sea_orm(string_value = "PENDING")]
    Pending,
    #[sea_orm(string_value = "DELIVERED")]
    Delivered,
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;

    #[test]
    fn orders_only_move_forward() {
        assert!(Placed.can_move_to(Accepted));
        assert!(PickedUp.can_move_to(Delivered));
        assert!(!Accepted.can_move_to(Placed));
        assert!(!Delivered.can_move_to(Cancelled));
        assert!(!PickedUp.can_move_to(Cancelled));
        assert!(!Placed.can_move_to(Delivered));
    }
}
