//! `WebhookEndpoint`, `WebhookDelivery` and the mutations that manage them.

use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use entities::{WebhookDeliveryStatus, webhook, webhook_delivery};
use sea_orm::DatabaseConnection;

use crate::{
    auth::{Scope, guards::viewer},
    graphql::{
        common::Timestamp,
        loaders::Loaders,
        payloads::UserError,
        relay::{
            Direction, GlobalId, NodeKind, Page, PageArgs, PageInfo, decode_cursor, encode_cursor,
        },
        restaurants::types::Restaurant,
    },
    services::{InputError, webhooks as service},
    webhooks::{self, EventType},
};

/// An integrator's endpoint: an HTTPS URL that receives signed notifications of the events it
/// subscribed to (Standard Webhooks: `webhook-id`, `webhook-timestamp` and
/// `webhook-signature` headers, verifiable with the official `standardwebhooks` libraries).
/// Seen and managed by whoever created it, and admins.
#[derive(Clone)]
pub struct WebhookEndpoint(pub Arc<webhook::Model>);

/// An integrator's endpoint: an HTTPS URL that receives signed notifications of the events it
/// subscribed to (Standard Webhooks: `webhook-id`, `webhook-timestamp` and
/// `webhook-signature` headers, verifiable with the official `standardwebhooks` libraries).
/// Seen and managed by whoever created it, and admins.
#[Object]
impl WebhookEndpoint {
    /// Global ID of the endpoint.
    pub async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::WebhookEndpoint, self.0.id)
    }

    /// Where deliveries are sent (HTTP `POST`).
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// What its owner wrote about it.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The event types it receives.
    async fn events(&self) -> Vec<EventType> {
        webhooks::event_types(&self.0)
    }

    /// The restaurant whose events it receives; null for every restaurant (admins only).
    async fn restaurant(&self, ctx: &Context<'_>) -> Result<Option<Restaurant>> {
        let Some(id) = self.0.restaurant_id else {
            return Ok(None);
        };
        Ok(ctx
            .data::<Loaders>()?
            .restaurants
            .load_one(id)
            .await?
            .map(Restaurant::from))
    }

    /// Whether it receives deliveries. An endpoint whose attempts all failed for
    /// `webhooks.disable_after_secs` (five days by default) is disabled by the server; enable it
    /// again with `updateWebhookEndpoint`.
    async fn enabled(&self) -> bool {
        self.0.is_active
    }

    /// Why it is disabled; null while enabled.
    async fn disabled_reason(&self) -> Option<&str> {
        if self.0.is_active {
            None
        } else {
            self.0.disabled_reason.as_deref()
        }
    }

    /// Since when every attempt to it has failed; null after a success.
    async fn failing_since(&self) -> Option<Timestamp> {
        self.0.failing_since.map(Timestamp)
    }

    /// Until when the secret before the last rotation still signs deliveries alongside the
    /// current one; null when there is no such secret (or it has expired).
    async fn previous_secret_expires_at(&self) -> Option<Timestamp> {
        self.0
            .previous_secret_expires_at
            .filter(|at| *at > Utc::now())
            .map(Timestamp)
    }

    /// When it was created.
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }

    /// Its deliveries, newest first, optionally only those with `status`: what was sent, when,
    /// and what the endpoint answered. Sent and failed ones are kept for the server's
    /// `webhooks.keep_days` (30 days unless configured), pending ones until they are sent.
    #[graphql(
        complexity = "crate::graphql::relay::connection_cost(first, last, 20, child_complexity)"
    )]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only deliveries with this status.")] status: Option<WebhookDeliveryState>,
        #[graphql(desc = "Cursor to start after (with `first`).")] after: Option<String>,
        #[graphql(desc = "Cursor to end before (with `last`).")] before: Option<String>,
        #[graphql(desc = "How many from the start, at most 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "How many from the end, at most 100.")] last: Option<i32>,
    ) -> Result<WebhookDeliveryConnection> {
        let args = PageArgs::new(first, after, last, before, 20)?;
        let cursor = args
            .cursor
            .as_deref()
            .map(decode_cursor::<i64>)
            .transpose()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let status = status.map(WebhookDeliveryStatus::from);
        let rows = service::deliveries(
            db,
            self.0.id,
            status,
            cursor,
            args.direction == Direction::Forward,
            args.limit,
        )
        .await?;
        Ok(WebhookDeliveryConnection {
            page: Page::from_rows(rows, &args),
            args,
            endpoint: self.0.id,
            status,
        })
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "WebhookDeliveryStatus")]
pub enum WebhookDeliveryState {
    /// Not sent yet, or failed and waiting for its next attempt (`nextAttemptAt`).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; `redeliverWebhook` sends it again.
    Failed,
}

impl From<WebhookDeliveryState> for WebhookDeliveryStatus {
    fn from(state: WebhookDeliveryState) -> Self {
        match state {
            WebhookDeliveryState::Pending => Self::Pending,
            WebhookDeliveryState::Delivered => Self::Delivered,
            WebhookDeliveryState::Failed => Self::Failed,
        }
    }
}

impl From<WebhookDeliveryStatus> for WebhookDeliveryState {
    fn from(status: WebhookDeliveryStatus) -> Self {
        match status {
            WebhookDeliveryStatus::Pending => Self::Pending,
            WebhookDeliveryStatus::Delivered => Self::Delivered,
            WebhookDeliveryStatus::Failed => Self::Failed,
        }
    }
}

/// One event sent (or to be sent) to one endpoint, with its attempts' outcome.
#[derive(Clone)]
pub struct WebhookDelivery(pub Arc<webhook_delivery::Model>);

/// One event sent (or to be sent) to one endpoint, with its attempts' outcome.
#[Object]
impl WebhookDelivery {
    /// Global ID of the delivery.
    pub async fn id(&self) -> ID {
        GlobalId::encode(NodeKind::WebhookDelivery, self.0.id)
    }

    /// The `webhook-id` header: the same on every attempt and redelivery of this event, so a
    /// receiver can drop duplicates.
    async fn message_id(&self) -> &str {
        &self.0.message_id
    }

    /// What happened.
    async fn event_type(&self) -> Option<EventType> {
        EventType::parse(&self.0.event_type)
    }

    /// Where it stands.
    async fn status(&self) -> WebhookDeliveryState {
        self.0.status.into()
    }

    /// Attempts made so far.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }

    /// The HTTP status of the last answer; null before the first attempt or when there was no
    /// answer (timeout, refused connection).
    async fn last_status_code(&self) -> Option<i32> {
        self.0.last_status_code
    }

    /// Milliseconds the last attempt took.
    async fn last_latency_ms(&self) -> Option<i32> {
        self.0.last_latency_ms
    }

    /// Why the last attempt failed (the start of the answer, or the network error).
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    /// When the last attempt was made.
    async fn last_attempt_at(&self) -> Option<Timestamp> {
        self.0.last_attempt_at.map(Timestamp)
    }

    /// When the next attempt is due; null once delivered or failed.
    async fn next_attempt_at(&self) -> Option<Timestamp> {
        self.0.next_attempt_at.map(Timestamp)
    }

    /// When the endpoint accepted it.
    async fn delivered_at(&self) -> Option<Timestamp> {
        self.0.delivered_at.map(Timestamp)
    }

    /// When it was recorded (in the transaction of the change it reports).
    async fn created_at(&self) -> Timestamp {
        Timestamp(self.0.created_at)
    }

    /// The JSON body, exactly as it is sent: `{type, timestamp, version, data}`.
    async fn payload(&self) -> String {
        serde_json::to_string(&self.0.payload).expect("JSON values serialize")
    }
}

/// A page of an endpoint's deliveries, newest first.
pub struct WebhookDeliveryConnection {
    page: Page<webhook_delivery::Model>,
    args: PageArgs,
    endpoint: i64,
    status: Option<WebhookDeliveryStatus>,
}

/// An edge of the deliveries connection.
#[derive(SimpleObject)]
pub struct WebhookDeliveryEdge {
    /// Opaque position of the node; pass it as `after` or `before`.
    cursor: String,
    /// The delivery.
    node: WebhookDelivery,
}

/// A page of an endpoint's deliveries, newest first.
#[Object]
impl WebhookDeliveryConnection {
    /// The deliveries of this page with their cursors.
    async fn edges(&self) -> Vec<WebhookDeliveryEdge> {
        self.page
            .items
            .iter()
            .map(|delivery| WebhookDeliveryEdge {
                cursor: encode_cursor(&delivery.id),
                node: WebhookDelivery(Arc::new(delivery.clone())),
            })
            .collect()
    }

    /// Where this page is in the list.
    async fn page_info(&self) -> PageInfo {
        self.page
            .page_info(&self.args, |delivery| encode_cursor(&delivery.id))
    }

    /// How many deliveries the list holds (with the status asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> Result<i64> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(service::count_deliveries(db, self.endpoint, self.status).await? as i64)
    }
}

/// A new webhook endpoint.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// Where to POST deliveries: `https`, on a public address (checked now and at every
    /// attempt), at most 2048 characters.
    pub url: String,
    /// The event types to receive; at least one.
    pub events: Vec<EventType>,
    /// The restaurant whose events to receive (its owner, or an admin); null for every
    /// restaurant (admins only).
    pub restaurant_id: Option<ID>,
    /// A note for its owner, at most 500 characters.
    pub description: Option<String>,
}

/// The created endpoint and its signing secret.
#[derive(SimpleObject)]
pub struct CreateWebhookEndpointPayload {
    /// The endpoint; null on a user error.
    pub webhook_endpoint: Option<WebhookEndpoint>,
    /// The signing secret (`whsec_…`) to verify deliveries with. Shown only this once.
    pub secret: Option<String>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Changes to an endpoint; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// The endpoint's ID.
    pub id: ID,
    /// A new URL, checked like a new endpoint's.
    pub url: Option<String>,
    /// New event types; at least one.
    pub events: Option<Vec<EventType>>,
    /// False stops deliveries (they wait); true starts them again and clears a disabled
    /// reason.
    pub enabled: Option<bool>,
    /// A new note, at most 500 characters.
    pub description: Option<String>,
}

/// Which endpoint.
#[derive(InputObject)]
pub struct WebhookEndpointIdInput {
    /// The endpoint's ID.
    pub id: ID,
}

/// The endpoint after the change.
#[derive(SimpleObject)]
pub struct WebhookEndpointPayload {
    /// The endpoint; null on a user error.
    pub webhook_endpoint: Option<WebhookEndpoint>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// The deleted endpoint.
#[derive(SimpleObject)]
pub struct DeleteWebhookEndpointPayload {
    /// ID of the deleted endpoint; null on a user error.
    pub deleted_id: Option<ID>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// The endpoint with its new secret.
#[derive(SimpleObject)]
pub struct RotateWebhookSecretPayload {
    /// The endpoint; null on a user error.
    pub webhook_endpoint: Option<WebhookEndpoint>,
    /// The new signing secret, shown only this once. The previous one keeps signing alongside
    /// it for 24 hours (`previousSecretExpiresAt`).
    pub secret: Option<String>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

/// Which delivery to send again.
#[derive(InputObject)]
pub struct RedeliverWebhookInput {
    /// The delivery's ID.
    pub delivery_id: ID,
}

/// The queued delivery.
#[derive(SimpleObject)]
pub struct WebhookDeliveryPayload {
    /// The new delivery, pending; null on a user error.
    pub delivery: Option<WebhookDelivery>,
    /// Problems with the input; empty on success.
    pub user_errors: Vec<UserError>,
}

fn policy<'a>(ctx: &'a Context<'_>) -> Result<&'a service::Policy> {
    ctx.data::<service::Policy>()
}

fn endpoint_payload(result: Result<webhook::Model, InputError>) -> WebhookEndpointPayload {
    match result {
        Ok(endpoint) => WebhookEndpointPayload {
            webhook_endpoint: Some(WebhookEndpoint(Arc::new(endpoint))),
            user_errors: Vec::new(),
        },
        Err(error) => WebhookEndpointPayload {
            webhook_endpoint: None,
            user_errors: vec![error.into()],
        },
    }
}

fn delivery_payload(result: Result<webhook_delivery::Model, InputError>) -> WebhookDeliveryPayload {
    match result {
        Ok(delivery) => WebhookDeliveryPayload {
            delivery: Some(WebhookDelivery(Arc::new(delivery))),
            user_errors: Vec::new(),
        },
        Err(error) => WebhookDeliveryPayload {
            delivery: None,
            user_errors: vec![error.into()],
        },
    }
}

/// Managing webhook endpoints. Every mutation needs a signed-in user; API tokens need
/// `webhooks:write`.
#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Creates an endpoint for a restaurant's events (its owner, or an admin) or every
    /// restaurant's (admins). The answer carries the signing secret, shown only this once.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> Result<CreateWebhookEndpointPayload> {
        let restaurant_id = input
            .restaurant_id
            .as_ref()
            .map(|id| GlobalId::decode_as(id, NodeKind::Restaurant))
            .transpose()?;
        let db = ctx.data::<DatabaseConnection>()?;
        let created = service::create(
            db,
            viewer(ctx)?,
            policy(ctx)?,
            service::NewEndpoint {
                url: input.url,
                events: input.events,
                restaurant_id,
                description: input.description,
            },
            Utc::now(),
        )
        .await?;
        Ok(match created {
            Ok((endpoint, secret)) => CreateWebhookEndpointPayload {
                webhook_endpoint: Some(WebhookEndpoint(Arc::new(endpoint))),
                secret: Some(secret),
                user_errors: Vec::new(),
            },
            Err(error) => CreateWebhookEndpointPayload {
                webhook_endpoint: None,
                secret: None,
                user_errors: vec![error.into()],
            },
        })
    }

    /// Changes an endpoint's URL, event types, description, or whether it is enabled.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookEndpointInput,
    ) -> Result<WebhookEndpointPayload> {
        let id = GlobalId::decode_as(&input.id, NodeKind::WebhookEndpoint)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::update(
            db,
            viewer(ctx)?,
            policy(ctx)?,
            id,
            service::EndpointChanges {
                url: input.url,
                events: input.events,
                enabled: input.enabled,
                description: input.description,
            },
        )
        .await?;
        Ok(endpoint_payload(result))
    }

    /// Deletes an endpoint and its deliveries; nothing more is sent to it.
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: WebhookEndpointIdInput,
    ) -> Result<DeleteWebhookEndpointPayload> {
        let id = GlobalId::decode_as(&input.id, NodeKind::WebhookEndpoint)?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(match service::delete(db, viewer(ctx)?, id).await? {
            Ok(id) => DeleteWebhookEndpointPayload {
                deleted_id: Some(GlobalId::encode(NodeKind::WebhookEndpoint, id)),
                user_errors: Vec::new(),
            },
            Err(error) => DeleteWebhookEndpointPayload {
                deleted_id: None,
                user_errors: vec![error.into()],
            },
        })
    }

    /// Gives an endpoint a new signing secret, returned only this once; deliveries carry
    /// signatures with both secrets for 24 hours.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        input: WebhookEndpointIdInput,
    ) -> Result<RotateWebhookSecretPayload> {
        let id = GlobalId::decode_as(&input.id, NodeKind::WebhookEndpoint)?;
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(
            match service::rotate_secret(db, viewer(ctx)?, policy(ctx)?, id, Utc::now()).await? {
                Ok((endpoint, secret)) => RotateWebhookSecretPayload {
                    webhook_endpoint: Some(WebhookEndpoint(Arc::new(endpoint))),
                    secret: Some(secret),
                    user_errors: Vec::new(),
                },
                Err(error) => RotateWebhookSecretPayload {
                    webhook_endpoint: None,
                    secret: None,
                    user_errors: vec![error.into()],
                },
            },
        )
    }

    /// Sends a `webhook.test` event to an endpoint now.
    async fn send_test_webhook(
        &self,
        ctx: &Context<'_>,
        input: WebhookEndpointIdInput,
    ) -> Result<WebhookDeliveryPayload> {
        let id = GlobalId::decode_as(&input.id, NodeKind::WebhookEndpoint)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::send_test(db, viewer(ctx)?, id, Utc::now()).await?;
        Ok(delivery_payload(result))
    }

    /// Sends a delivery again (same `webhook-id`, same payload, new signature), after what is
    /// already queued for its endpoint.
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        input: RedeliverWebhookInput,
    ) -> Result<WebhookDeliveryPayload> {
        let id = GlobalId::decode_as(&input.delivery_id, NodeKind::WebhookDelivery)?;
        let db = ctx.data::<DatabaseConnection>()?;
        let result = service::redeliver(db, viewer(ctx)?, id, Utc::now()).await?;
        Ok(delivery_payload(result))
    }
}

/// The endpoint `id` if the viewer manages it (and, with a token, has `webhooks:write`).
pub async fn load_endpoint(ctx: &Context<'_>, id: i64) -> Result<Option<WebhookEndpoint>> {
    let viewer = viewer(ctx)?;
    if viewer.user().is_none() || !viewer.allows(Scope::WebhooksWrite) {
        return Ok(None);
    }
    let db = ctx.data::<DatabaseConnection>()?;
    Ok(service::find_managed(db, viewer, id)
        .await?
        .map(|endpoint| WebhookEndpoint(Arc::new(endpoint))))
}

/// The delivery `id` if the viewer manages its endpoint.
pub async fn load_delivery(ctx: &Context<'_>, id: i64) -> Result<Option<WebhookDelivery>> {
    use sea_orm::EntityTrait;
    let db = ctx.data::<DatabaseConnection>()?;
    let Some(delivery) = webhook_delivery::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    Ok(load_endpoint(ctx, delivery.webhook_id)
        .await?
        .map(|_| WebhookDelivery(Arc::new(delivery))))
}
