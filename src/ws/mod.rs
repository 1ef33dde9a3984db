//! GraphQL over WebSocket: the `graphql-transport-ws` protocol with its close codes, and the
//! legacy `graphql-ws` (subscriptions-transport-ws) protocol.
//!
//! async-graphql executes the operations; this module owns the socket and checks every client
//! message against the protocol before async-graphql sees it, because async-graphql 7 closes
//! with generic codes (or not at all) where the protocol asks for specific ones:
//!
//! | code | when |
//! |------|------|
//! | 4400 | a message that is not valid JSON, has an unknown type, or lacks a field |
//! | 4401 | `subscribe` before the server acknowledged `connection_init` |
//! | 4403 | `connection_init` refused (a bad credential, or a credential field it does not read), or the credential expired |
//! | 4408 | no acknowledged `connection_init` within the wait timeout |
//! | 4409 | `subscribe` with the id of an operation still running |
//! | 4429 | a second `connection_init`, or more than 100 operations at once (both protocols) |
//! | 1009 | a message over 64 KiB, told from the frame headers (`frame_limit`) |
//! | 1001 | the server is stopping (`shutdown`): reconnect, to another replica |
//!
//! A socket lives no longer than the credential it was opened with: when that expires, the
//! socket is closed with 4403 and every operation on it ends; the client reconnects with a
//! fresh one. Each operation checks that credential again first (`Reauthenticate`).

use std::{collections::HashSet, future::Future, time::Duration};

use actix_web::{
    FromRequest, HttpRequest, HttpResponse,
    http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL},
    web,
};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use async_graphql::{
    Data, Executor,
    http::{ClientMessage, WebSocket, WebSocketProtocols, WsMessage},
};
use chrono::{DateTime, Utc};
use futures_util::{FutureExt, StreamExt};
use serde::Deserialize;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use crate::metrics::{GaugeGuard, METRICS};

mod frame_limit;
use tokio_stream_adapter::ReceiverStream;

/// Client messages waiting for async-graphql; a client that sends faster than that is dropped
/// rather than waited for, so the connection's loop never blocks on its own inbox.
const FORWARD_CAPACITY: usize = 64;

/// Operations one connection may run at once.
const MAX_OPERATIONS: usize = 100;

/// Longest operation id accepted.
const MAX_ID_BYTES: usize = 128;

/// A credential that expires later than this is not watched (API tokens may live for years).
const MAX_CREDENTIAL_WAIT: Duration = Duration::from_hours(365 * 24);

/// Timings and sizes of a WebSocket connection.
#[derive(Debug, Clone, Copy)]
pub struct SocketLimits {
    /// How long a client has to send an acceptable `connection_init`.
    pub init_timeout: Duration,
    /// How often the server pings.
    pub ping_interval: Duration,
    /// A client silent for this long (no pong, no message) is dropped.
    pub client_timeout: Duration,
    /// A client that does not take a message within this time is dropped, so a stalled
    /// reader never holds the server's buffers for long.
    pub send_timeout: Duration,
    /// Largest client message, in bytes.
    pub max_message_bytes: usize,
}

impl Default for SocketLimits {
    fn default() -> Self {
        Self {
            init_timeout: Duration::from_secs(3),
            ping_interval: Duration::from_secs(5),
            client_timeout: Duration::from_secs(15),
            send_timeout: Duration::from_secs(10),
            max_message_bytes: 64 * 1024,
        }
    }
}

/// Which protocol the client asked for in `Sec-WebSocket-Protocol`. Without the header,
/// `graphql-transport-ws`; `None` when the client offers only protocols we do not speak.
fn negotiate(request: &HttpRequest) -> Option<WebSocketProtocols> {
    let Some(offered) = request.headers().get(SEC_WEBSOCKET_PROTOCOL) else {
        return Some(WebSocketProtocols::GraphQLWS);
    };
    let offered: Vec<&str> = offered
        .to_str()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .collect();
    if offered.contains(&"graphql-transport-ws") {
        Some(WebSocketProtocols::GraphQLWS)
    } else if offered.contains(&"graphql-ws") {
        Some(WebSocketProtocols::SubscriptionsTransportWS)
    } else {
        None
    }
}

/// What `connection_init` gives a connection: its data, and when its credential expires
/// (`None`: never, e.g. anonymous).
pub type Initialised = (Data, Option<DateTime<Utc>>);

/// Accepts the upgrade in `request` and serves GraphQL over it; `on_init` turns the
/// `connection_init` payload into the connection's data and credential expiry, or refuses it.
/// A request that cannot be upgraded gets 400.
pub fn serve<E, OnInit, InitFut>(
    request: &HttpRequest,
    payload: web::Payload,
    executor: E,
    limits: SocketLimits,
    going_away: tokio::sync::watch::Receiver<bool>,
    on_init: OnInit,
) -> HttpResponse
where
    E: Executor,
    OnInit: FnOnce(serde_json::Value) -> InitFut + Send + 'static,
    InitFut: Future<Output = async_graphql::Result<Initialised>> + Send + 'static,
{
    let Some(protocol) = negotiate(request) else {
        return HttpResponse::BadRequest()
            .body("offer the `graphql-transport-ws` (or legacy `graphql-ws`) subprotocol");
    };
    // The size limit holds from the first byte of each frame header on.
    let mut limited = actix_web::dev::Payload::from(Box::pin(frame_limit::FrameLimit::new(
        payload.into_inner(),
        limits.max_message_bytes,
    ))
        as std::pin::Pin<
            Box<
                dyn futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>,
            >,
        >);
    let Some(Ok(payload)) = web::Payload::from_request(request, &mut limited).now_or_never() else {
        return HttpResponse::InternalServerError().finish();
    };
    let (mut response, session, frames) = match actix_ws::handle(request, payload) {
        Ok(handshake) => handshake,
        Err(error) => return HttpResponse::BadRequest().body(error.to_string()),
    };
    if request.headers().contains_key(SEC_WEBSOCKET_PROTOCOL) {
        response.headers_mut().insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol.sec_websocket_protocol()),
        );
    }
    let frames = frames
        .max_frame_size(limits.max_message_bytes)
        .aggregate_continuations()
        .max_continuation_size(limits.max_message_bytes);
    let (forward, inbox) = mpsc::channel(FORWARD_CAPACITY);
    let (expiry_sender, expiry) = oneshot::channel();
    let graphql = WebSocket::from_message_stream(executor, ReceiverStream(inbox), protocol)
        .on_connection_init(move |payload| async move {
            let (data, expires_at) = on_init(payload).await?;
            let _ = expiry_sender.send(expires_at);
            Ok(data)
        });
    actix_web::rt::spawn(async move {
        let _open = GaugeGuard::hold(&METRICS.websocket_connections);
        let connection = Connection {
            session,
            protocol,
            limits,
            gate: Gate::default(),
            forward,
            expiry,
            going_away,
        };
        connection.run(frames, graphql).await;
    });
    response
}

/// What the protocol allows next, from the messages seen so far.
#[derive(Default)]
struct Gate {
    init_received: bool,
    acknowledged: bool,
    /// Ids of operations started and not yet completed.
    running: HashSet<String>,
    /// Ids the client completed whose `complete` from async-graphql is still to come; it is
    /// not passed on (the client already knows), and must not end a new operation reusing
    /// the id.
    completed_by_client: HashSet<String>,
}

/// A client message's verdict.
enum Verdict {
    Forward(Box<ClientMessage>),
    Ignore,
    Close(u16, String),
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    payload: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ServerEnvelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
}

fn invalid(why: &str) -> Verdict {
    Verdict::Close(4400, why.to_owned())
}

impl Gate {
    /// Checks a `graphql-transport-ws` client message.
    fn inbound(&mut self, text: &str) -> Verdict {
        let Ok(envelope) = serde_json::from_str::<Envelope>(text) else {
            return invalid("Invalid message received");
        };
        let payload_ok = envelope
            .payload
            .as_ref()
            .is_none_or(|p| p.is_object() || p.is_null());
        match envelope.kind.as_str() {
            "connection_init" => {
                if self.init_received {
                    return Verdict::Close(4429, "Too many initialisation requests".into());
                }
                if !payload_ok {
                    return invalid("`connection_init` payload must be an object");
                }
                self.init_received = true;
            }
            "ping" | "pong" if !payload_ok => return invalid("ping payload must be an object"),
            "ping" => {}
            "pong" => return Verdict::Ignore,
            "subscribe" => {
                let Some(id) = envelope.id.filter(|id| !id.is_empty()) else {
                    return invalid("`subscribe` needs an `id`");
                };
                if id.len() > MAX_ID_BYTES {
                    return invalid("the `id` is too long");
                }
                let has_query = envelope
                    .payload
                    .as_ref()
                    .and_then(|p| p.get("query"))
                    .is_some_and(serde_json::Value::is_string);
                if !has_query {
                    return invalid("`subscribe` needs a payload with a `query`");
                }
                if !self.acknowledged {
                    return Verdict::Close(4401, "Unauthorized".into());
                }
                if self.running.len() >= MAX_OPERATIONS {
                    return Verdict::Close(4429, "Too many operations at once".into());
                }
                if !self.running.insert(id.clone()) {
                    return Verdict::Close(4409, format!("Subscriber for {id} already exists"));
                }
            }
            "complete" => {
                let Some(id) = envelope.id else {
                    return invalid("`complete` needs an `id`");
                };
                if !self.running.remove(&id) {
                    return Verdict::Ignore;
                }
                self.completed_by_client.insert(id);
            }
            _ => return invalid("Invalid message received"),
        }
        match serde_json::from_str::<ClientMessage>(text) {
            Ok(message) => Verdict::Forward(Box::new(message)),
            Err(_) => invalid("Invalid message received"),
        }
    }

    /// Checks a legacy `graphql-ws` (subscriptions-transport-ws) client message: the same cap
    /// on operations at once as the current protocol, and the same id rules.
    fn inbound_legacy(&mut self, text: &str) -> Verdict {
        let Ok(envelope) = serde_json::from_str::<Envelope>(text) else {
            return Verdict::Close(1002, "Invalid message received".into());
        };
        match envelope.kind.as_str() {
            "start" => {
                let Some(id) = envelope
                    .id
                    .filter(|id| !id.is_empty() && id.len() <= MAX_ID_BYTES)
                else {
                    return Verdict::Close(
                        1002,
                        "`start` needs an `id` of at most 128 bytes".into(),
                    );
                };
                if self.running.len() >= MAX_OPERATIONS {
                    return Verdict::Close(4429, "Too many operations at once".into());
                }
                self.running.insert(id);
            }
            "stop" => {
                if let Some(id) = &envelope.id {
                    self.running.remove(id);
                }
            }
            _ => {}
        }
        match serde_json::from_str::<ClientMessage>(text) {
            Ok(message) => Verdict::Forward(Box::new(message)),
            Err(_) => Verdict::Close(1002, "Invalid message received".into()),
        }
    }

    /// Notes what a server message changes (the acknowledgement, finished operations);
    /// `false` when the message is not to be sent.
    fn outbound(&mut self, text: &str) -> bool {
        // Results (nearly all a socket sends) change nothing here, and need not be parsed:
        // async-graphql writes the message's type first.
        if text.starts_with(r#"{"type":"next","#) || text.starts_with(r#"{"type":"data","#) {
            return true;
        }
        let Ok(envelope) = serde_json::from_str::<ServerEnvelope>(text) else {
            return true;
        };
        match (&*envelope.kind, envelope.id) {
            ("connection_ack", _) => self.acknowledged = true,
            ("complete", Some(id)) if self.completed_by_client.remove(&*id) => return false,
            ("complete" | "error", Some(id)) => {
                self.running.remove(&*id);
            }
            _ => {}
        }
        true
    }
}

struct Connection {
    session: Session,
    protocol: WebSocketProtocols,
    limits: SocketLimits,
    gate: Gate,
    forward: mpsc::Sender<serde_json::Result<ClientMessage>>,
    /// When the credential accepted at `connection_init` expires, once there was one.
    expiry: oneshot::Receiver<Option<DateTime<Utc>>>,
    /// Turns `true` when the server begins to stop.
    going_away: tokio::sync::watch::Receiver<bool>,
}

/// How a connection ended.
enum End {
    /// Close with this code and reason.
    Close(u16, String),
    /// The client closed; answer its close frame.
    Echo(Option<CloseReason>),
    /// The client went away; just finish.
    Gone,
}

impl Connection {
    async fn run<S>(mut self, mut frames: actix_ws::AggregatedMessageStream, graphql: S)
    where
        S: futures_util::Stream<Item = WsMessage>,
    {
        let graphql = std::pin::pin!(graphql);
        let mut graphql = graphql.fuse();
        let init_deadline = tokio::time::sleep(self.limits.init_timeout);
        tokio::pin!(init_deadline);
        let mut heartbeat = tokio::time::interval_at(
            Instant::now() + self.limits.ping_interval,
            self.limits.ping_interval,
        );
        let mut last_heard = Instant::now();
        // Armed once `connection_init` reports a credential that expires.
        let mut expiry_known = false;
        let credential_expiry = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(credential_expiry);
        let mut expires = false;
        // One future for the whole connection, so that the loop (once per message sent) does
        // not register and unregister a waiter with the shutdown signal each time round.
        let mut going_away = self.going_away.clone();
        let stopping = async move {
            if going_away.wait_for(|stopping| *stopping).await.is_err() {
                // The signal's sender is gone: the server is not stopping through it.
                std::future::pending::<()>().await;
            }
        };
        tokio::pin!(stopping);
        let end = loop {
            tokio::select! {
                () = &mut stopping => {
                    break End::Close(1001, "the server is restarting; reconnect".into());
                }
                frame = frames.next() => {
                    last_heard = Instant::now();
                    match self.frame(frame).await {
                        Ok(()) => {}
                        Err(end) => break end,
                    }
                }
                message = graphql.next() => match message {
                    Some(WsMessage::Text(text)) => {
                        if !self.gate.outbound(&text) {
                            continue;
                        }
                        let sent = tokio::time::timeout(
                            self.limits.send_timeout,
                            self.session.text(text),
                        )
                        .await;
                        match sent {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => break End::Gone,
                            Err(_) => break End::Close(1008, "the client stopped reading".into()),
                        }
                    }
                    // async-graphql refuses a `connection_init` with 1002; the protocol says 4403.
                    // The reason says why (a bad credential, an unknown credential field).
                    Some(WsMessage::Close(1002, reason)) if !self.gate.acknowledged => {
                        break End::Close(4403, reason);
                    }
                    Some(WsMessage::Close(code, reason)) => break End::Close(code, reason),
                    None => break End::Close(1000, "Normal Closure".into()),
                },
                () = &mut init_deadline, if !self.gate.acknowledged => {
                    break End::Close(4408, "Connection initialisation timeout".into());
                }
                expiry = &mut self.expiry, if !expiry_known => {
                    expiry_known = true;
                    if let Ok(Some(at)) = expiry {
                        let left = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                        // tokio's timers reach about two years; no socket stays open that long.
                        if left < MAX_CREDENTIAL_WAIT {
                            credential_expiry.as_mut().reset(Instant::now() + left);
                            expires = true;
                        }
                    }
                }
                () = &mut credential_expiry, if expires => {
                    break End::Close(4403, "the credential has expired".into());
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > self.limits.client_timeout {
                        break End::Close(1001, "the client stopped answering pings".into());
                    }
                    let timeout = self.limits.send_timeout;
                    if !matches!(tokio::time::timeout(timeout, self.session.ping(b"")).await, Ok(Ok(()))) {
                        break End::Gone;
                    }
                }
            }
        };
        let reason = match end {
            End::Close(code, reason) => Some(CloseReason {
                code: CloseCode::Other(code),
                description: Some(close_reason(reason)),
            }),
            End::Echo(reason) => reason,
            End::Gone => return,
        };
        let _ = tokio::time::timeout(self.limits.send_timeout, self.session.close(reason)).await;
    }

    /// Handles one frame from the client.
    async fn frame(
        &mut self,
        frame: Option<Result<AggregatedMessage, actix_ws::ProtocolError>>,
    ) -> Result<(), End> {
        match frame {
            Some(Ok(AggregatedMessage::Text(text))) => {
                let verdict = if self.protocol == WebSocketProtocols::GraphQLWS {
                    self.gate.inbound(&text)
                } else {
                    self.gate.inbound_legacy(&text)
                };
                let message = match verdict {
                    Verdict::Forward(message) => *message,
                    Verdict::Ignore => return Ok(()),
                    Verdict::Close(code, reason) => return Err(End::Close(code, reason)),
                };
                match self.forward.try_send(Ok(message)) {
                    Ok(()) => Ok(()),
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        Err(End::Close(1008, "too many messages at once".into()))
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => Err(End::Gone),
                }
            }
            Some(Ok(AggregatedMessage::Binary(_))) => Err(End::Close(
                4400,
                "binary frames are not part of the protocol".into(),
            )),
            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                match tokio::time::timeout(self.limits.send_timeout, self.session.pong(&bytes))
                    .await
                {
                    Ok(Ok(())) => Ok(()),
                    _ => Err(End::Gone),
                }
            }
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            Some(Ok(AggregatedMessage::Close(reason))) => Err(End::Echo(reason)),
            None => Err(End::Gone),
            Some(Err(error)) if frame_limit::is_overflow(&error) => Err(End::Close(
                1009,
                format!(
                    "a message is larger than {} bytes",
                    self.limits.max_message_bytes
                ),
            )),
            Some(Err(error)) => Err(End::Close(1002, error.to_string())),
        }
    }
}

/// `reason` cut to the 123 bytes a close frame has room for, on a character boundary.
fn close_reason(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// Adapts a Tokio receiver to a `Stream`, so async-graphql can read the checked messages.
mod tokio_stream_adapter {
    use std::{
        pin::Pin,
        task::{Context, Poll},
    };

    use tokio::sync::mpsc;

    pub struct ReceiverStream<T>(pub mpsc::Receiver<T>);

    impl<T> futures_util::Stream for ReceiverStream<T> {
        type Item = T;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}

/// The request slots, for subscriptions to take one while they start (in the connection's
/// data): a subscription's setup reads the database like a query does, and a socket sending
/// a hundred of them must wait its turn with everyone else; once started, it holds none.
#[derive(Clone)]
pub struct StartSlots(pub Option<std::sync::Arc<crate::graphql::limits::Admission>>);

impl StartSlots {
    /// Waits for a slot, if there is a limit; the slot is held until the value is dropped.
    pub async fn turn(&self) -> Option<crate::graphql::limits::Admitted> {
        match &self.0 {
            Some(slots) => Some(slots.admit(1).await),
            None => None,
        }
    }
}

/// Who is asking, checked again for each operation on a socket: the credential it was opened
/// with, judged as an HTTP request's is (in the connection's data; absent for an anonymous
/// socket). A token revoked, a role taken away or a staff membership ended since
/// `connection_init` count from the next operation on: it runs as the viewer this returns, or
/// not at all (`UNAUTHENTICATED`, or `SERVICE_UNAVAILABLE` when the check itself failed).
#[derive(Clone)]
pub struct Reauthenticate(
    pub  std::sync::Arc<
        dyn Fn() -> futures_util::future::BoxFuture<
                'static,
                Result<crate::auth::Viewer, async_graphql::Error>,
            > + Send
            + Sync,
    >,
);

/// The schema as WebSocket operations reach it: a query or mutation takes one of the request
/// slots that HTTP requests take (`limits.max_concurrent_requests`) before it runs, and holds
/// it until it has answered, so one socket's flood of operations waits its turn with
/// everyone else's instead of taking the database pool. A subscription's stream holds no slot
/// (it waits for events, not for the database).
#[derive(Clone)]
pub struct AdmittedSchema<E> {
    pub executor: E,
    pub slots: Option<std::sync::Arc<crate::graphql::limits::Admission>>,
}

impl<E: Executor> Executor for AdmittedSchema<E> {
    fn execute(
        &self,
        request: async_graphql::Request,
    ) -> impl Future<Output = async_graphql::Response> + Send {
        let (executor, slots) = (self.executor.clone(), self.slots.clone());
        async move {
            let _turn = match &slots {
                Some(slots) => Some(slots.admit(1).await),
                None => None,
            };
            executor.execute(request).await
        }
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<std::sync::Arc<Data>>,
    ) -> futures_util::stream::BoxStream<'static, async_graphql::Response> {
        let check = session_data
            .as_ref()
            .and_then(|data| data.get(&std::any::TypeId::of::<Reauthenticate>()))
            .and_then(|check| check.downcast_ref::<Reauthenticate>())
            .cloned();
        let Some(Reauthenticate(check)) = check else {
            return self.admitted_stream(request, session_data);
        };
        let this = self.clone();
        Box::pin(
            futures_util::stream::once(async move {
                match check().await {
                    // The operation's own viewer comes before the connection's.
                    Ok(viewer) => this.admitted_stream(request.data(viewer), session_data),
                    Err(error) => {
                        // About the operation as a whole: no location in its document.
                        let mut refused = async_graphql::ServerError::new(error.message, None);
                        refused.extensions = error.extensions;
                        Box::pin(futures_util::stream::once(async move {
                            async_graphql::Response::from_errors(vec![refused])
                        }))
                    }
                }
            })
            .flatten(),
        )
    }
}

impl<E: Executor> AdmittedSchema<E> {
    fn admitted_stream(
        &self,
        mut request: async_graphql::Request,
        session_data: Option<std::sync::Arc<Data>>,
    ) -> futures_util::stream::BoxStream<'static, async_graphql::Response> {
        let Some(slots) = self.slots.clone() else {
            return self.executor.execute_stream(request, session_data);
        };
        let name = request.operation_name.clone();
        let subscribes = request.parsed_query().is_ok_and(|document| {
            crate::graphql::extensions::operation_of(document, name.as_deref()).is_some_and(
                |(_, ty)| ty == async_graphql::parser::types::OperationType::Subscription,
            )
        });
        if subscribes {
            return self.executor.execute_stream(request, session_data);
        }
        let executor = self.executor.clone();
        Box::pin(
            futures_util::stream::once(async move {
                let turn = slots.admit(1).await;
                executor
                    .execute_stream(request, session_data)
                    .map(move |response| {
                        let _held = &turn;
                        response
                    })
            })
            .flatten(),
        )
    }
}
