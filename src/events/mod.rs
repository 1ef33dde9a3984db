//! Live updates, read from the durable log of what happened.
//!
//! Every committed change of an order wrote its `order_events` row in the change's own
//! transaction, with the version of the order it made. Each process runs one reader that reads
//! new rows in id order, once, rebuilds the order as it was at that version, and hands the same
//! [`OrderChange`] to every subscriber in the process; subscribers check access in memory,
//! against the courier and the restaurant's staff read with the change. One event costs a few
//! statements per process, however many subscribers follow it.
//!
//! Publishing after commit only rings a doorbell (`NOTIFY` on PostgreSQL, so every replica
//! hears it; in process on SQLite): the reader looks at once. It also looks every second and
//! after its listener reconnects, so a doorbell lost to an outage delays a change, never loses
//! it.
//!
//! On PostgreSQL an id is taken when its row is inserted, not when its transaction commits, so
//! the reader can see id 12 before id 11 commits. Skipped ids are kept as gaps and looked for
//! again until they appear (and are delivered then) or are old enough to be rollbacks. Two
//! changes of one order never commit out of order (each checks the version the other made), so
//! each order's changes still arrive in version order.
//!
//! Courier positions are not in the log: each replaces the last. They travel on the same
//! channel and are read once per process too.
//!
//! What a running subscription's viewer may do can change too: an API token revoked, a role
//! taken away. The reader looks for such changes after each batch of the log and before handing
//! it out, so a change of access committed before an order change is known to every subscriber
//! before that order change reaches them ([`AccessLog`]).

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use entities::{api_token, delivery, order, order_event, restaurant_staff, user};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, mpsc};

use crate::{
    auth::{Role, Viewer},
    db::one_of,
    services::orders::may_see,
};

/// The PostgreSQL channel doorbells travel on.
const CHANNEL: &str = "dishpatch_events";
/// Changes a subscriber may fall behind by before its stream ends with an error (it cannot be
/// given every change any more, and says so instead of skipping some).
pub const BUFFER: usize = 4096;
/// Courier positions a subscriber may fall behind by; it then skips to the newest.
const MOVES_BUFFER: usize = 1024;
/// How often the reader looks at the log without a doorbell.
const POLL: Duration = Duration::from_secs(1);
/// How long the reader lets a doorbell's neighbours come before it reads: a few milliseconds on
/// a live update's way, saved many times over in reads when orders come one after another.
const GATHER: Duration = Duration::from_millis(2);
/// How long a skipped id is waited for before it counts as a rolled-back transaction's. Longer
/// than any write transaction runs: each runs inside a request, which the execution limit
/// (`limits.execution_timeout_ms`, 10 s by default) cancels, rolling it back.
const GAP_WAIT: Duration = Duration::from_mins(1);
/// Rows read at once.
const BATCH: u64 = 500;
/// Skipped ids kept at most (PostgreSQL skips 32 after a crash; a larger jump is not waited
/// for id by id).
const MAX_GAPS: i64 = 10_000;
/// How far before its previous look the reader looks again for access changes: a change's time
/// is taken before it commits (and each write runs within the execution limit), and the
/// replicas' clocks may disagree a little.
const ACCESS_OVERLAP: Duration = GAP_WAIT;
/// Access changes kept for running subscriptions to take; one that misses more ends.
const ACCESS_KEPT: usize = 4096;

/// What a doorbell says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Doorbell {
    /// New rows in the log.
    OrderChanged,
    /// The courier of an order reported a new position.
    CourierMoved { order_id: i64 },
    /// A restaurant's menu changed.
    MenuChanged { restaurant_id: i64 },
    /// An API token was revoked or a user's roles changed.
    AccessChanged,
}

/// A restaurant's menu changed (committed); subscribers read it as it is now.
#[derive(Debug, Clone, Copy)]
pub struct MenuChange {
    pub restaurant_id: i64,
}

/// One committed change of an order, as every subscriber in the process receives it.
#[derive(Debug)]
pub struct OrderChange {
    /// The log row: what changed, who changed it, when, and the version it made.
    pub event: Arc<order_event::Model>,
    /// The order as that change left it (status, version and time of the change; the rest of
    /// an order does not change once placed). Shared by every subscriber's update.
    pub order: Arc<order::Model>,
    /// The order's courier, once one claimed it.
    pub courier_id: Option<i64>,
    /// The users who work at the order's restaurant, read with the change.
    pub staff: Arc<HashSet<i64>>,
    /// The access look that came before it was handed out.
    look: u64,
}

/// Something handed out after an access look ([`AccessReader::look`]): a subscription that
/// began following after that look skips it (it was read before the subscription began, and
/// the look did not count the subscription's credential).
pub trait Stamped {
    /// The number of the look.
    fn look(&self) -> u64;
}

impl Stamped for OrderChange {
    fn look(&self) -> u64 {
        self.look
    }
}

impl Stamped for CourierMove {
    fn look(&self) -> u64 {
        self.look
    }
}

impl OrderChange {
    /// Whether `viewer` may see the order now: its customer, its restaurant's staff (as read
    /// with the change), its courier, admins.
    pub fn visible_to(&self, viewer: &Viewer) -> bool {
        may_see(viewer, &self.order, self.courier_id, |user| {
            self.staff.contains(&user)
        })
    }
}

/// A courier's new position, as every subscriber in the process receives it.
#[derive(Debug)]
pub struct CourierMove {
    /// Shared by every subscriber's update.
    pub delivery: Arc<delivery::Model>,
    pub order: order::Model,
    pub staff: Arc<HashSet<i64>>,
    /// The access look that came before it was handed out.
    look: u64,
}

impl CourierMove {
    /// Whether `viewer` may see the delivery: as [`OrderChange::visible_to`].
    pub fn visible_to(&self, viewer: &Viewer) -> bool {
        may_see(
            viewer,
            &self.order,
            Some(self.delivery.courier_id),
            |user| self.staff.contains(&user),
        )
    }
}

/// A change of what a signed-in user may do, as running subscriptions take it.
#[derive(Debug)]
pub enum AccessChange {
    /// An API token was revoked: subscriptions signed in with it end.
    TokenRevoked { token_id: i64 },
    /// A user's roles changed at `at`: their subscriptions go on with these.
    RolesChanged {
        user_id: i64,
        roles: HashSet<Role>,
        at: DateTime<Utc>,
    },
}

/// The access changes this process has read, numbered in the order read. A subscription takes
/// the ones it has not taken before it sends anything ([`Follower::refresh`]): one atomic read
/// when nothing changed.
#[derive(Default)]
pub struct AccessLog {
    /// The number of the newest change (0: none yet).
    newest: AtomicU64,
    /// The newest changes, at most [`ACCESS_KEPT`], oldest first.
    kept: RwLock<VecDeque<(u64, Arc<AccessChange>)>>,
    /// Whose access running subscriptions follow: only changes of theirs are kept, so changes
    /// nobody follows (a user revoking a token they do not subscribe with) never push a
    /// subscriber's changes out of the log.
    watched: Mutex<Watched>,
}

/// The API tokens and users of running subscriptions, each with how many follow it.
#[derive(Default)]
struct Watched {
    tokens: HashMap<i64, usize>,
    users: HashMap<i64, usize>,
    /// Looks taken so far: each counts the watched tokens and users under this lock, so a
    /// subscription registered after look n was not counted by it.
    looks: u64,
}

/// Counts `key` once more (`up`) or once less in `counts`.
fn count(counts: &mut HashMap<i64, usize>, key: i64, up: bool) {
    if up {
        *counts.entry(key).or_default() += 1;
    } else if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

impl AccessLog {
    fn append(&self, changes: Vec<AccessChange>) {
        if changes.is_empty() {
            return;
        }
        let mut kept = self
            .kept
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut newest = self.newest.load(Ordering::Relaxed);
        for change in changes {
            newest += 1;
            kept.push_back((newest, Arc::new(change)));
        }
        while kept.len() > ACCESS_KEPT {
            kept.pop_front();
        }
        self.newest.store(newest, Ordering::Release);
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts `viewer`'s token and user as followed once more (`up`) or once less; the number
    /// of looks taken so far.
    fn watch(&self, viewer: &Viewer, up: bool) -> u64 {
        let mut watched = self.watched();
        if let Some(token) = viewer.api_token() {
            count(&mut watched.tokens, token, up);
        }
        if let Some(user) = viewer.user() {
            count(&mut watched.users, user.id, up);
        }
        watched.looks
    }
}

/// Why a running subscription's viewer may no longer be followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessEnded {
    /// The API token it signed in with was revoked.
    Revoked,
    /// More access changes came than are kept since it last took them: it cannot tell.
    Behind,
}

/// A running subscription's viewer, kept as the access log says it is now.
pub struct Follower {
    viewer: Viewer,
    log: Arc<AccessLog>,
    /// The number of the last change taken; `None` before the first look, which takes every
    /// kept change (some may have been read between signing in and subscribing).
    taken: Option<u64>,
    /// Access looks taken before it began: what they preceded is not for it.
    registered: u64,
}

impl Follower {
    /// The viewer as access changes read from now on leave it.
    pub fn viewer(&self) -> &Viewer {
        &self.viewer
    }

    /// Whether `change` was handed out after an access look that counted this subscription.
    pub fn counted(&self, change: &impl Stamped) -> bool {
        change.look() > self.registered
    }

    /// Takes the access changes read since the last call: new roles are taken; a revoked token
    /// ends the subscription.
    pub fn refresh(&mut self) -> Result<(), AccessEnded> {
        let newest = self.log.newest.load(Ordering::Acquire);
        if self.taken == Some(newest) {
            return Ok(());
        }
        let kept = self
            .log
            .kept
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let taken = self.taken.unwrap_or(0);
        if let (Some(_), Some((first, _))) = (self.taken, kept.front())
            && *first > taken + 1
        {
            return Err(AccessEnded::Behind);
        }
        for (_, change) in kept.iter().filter(|(number, _)| *number > taken) {
            match &**change {
                AccessChange::TokenRevoked { token_id } => {
                    if self.viewer.api_token() == Some(*token_id) {
                        return Err(AccessEnded::Revoked);
                    }
                }
                AccessChange::RolesChanged { user_id, roles, at } => {
                    self.viewer.take_roles(*user_id, roles, *at);
                }
            }
        }
        // Changes read since `newest` was, if any, are taken too.
        self.taken = Some(kept.back().map_or(newest, |(number, _)| *number));
        Ok(())
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.log.watch(&self.viewer, false);
    }
}

/// Where changes are announced and followed.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    changes: broadcast::Sender<Arc<OrderChange>>,
    moves: broadcast::Sender<Arc<CourierMove>>,
    menus: broadcast::Sender<MenuChange>,
    /// Wakes this process's log reader.
    doorbell: Arc<Notify>,
    /// Positions to read and hand out in this process.
    moved: mpsc::UnboundedSender<i64>,
    /// Set on PostgreSQL: doorbells go to every replica.
    postgres: Option<DatabaseConnection>,
    access: Arc<AccessLog>,
}

impl EventBus {
    /// Starts this process's reader of the log in `db` (and, on PostgreSQL, the listener for
    /// other replicas' doorbells, connecting to `url`). Changes committed from now on are
    /// delivered.
    pub async fn start(db: DatabaseConnection, url: &str) -> Result<Self, DbErr> {
        let (changes, moves) = (
            broadcast::channel(BUFFER).0,
            broadcast::channel(MOVES_BUFFER).0,
        );
        let doorbell = Arc::new(Notify::new());
        let (positions, positions_rx) = mpsc::unbounded_channel();
        let menus = broadcast::channel(MOVES_BUFFER).0;
        let last = last_id(&db).await?;
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        let access = Arc::new(AccessLog::default());
        // Shared by the log reader and the hand-out of positions: each looks before it hands
        // anything out.
        let reader = Arc::new(tokio::sync::Mutex::new(AccessReader {
            log: access.clone(),
            since: None,
            revoked: HashMap::new(),
            roles: HashMap::new(),
        }));
        tokio::spawn(
            LogReader {
                db: db.clone(),
                last,
                gaps: BTreeMap::new(),
                failing_since: None,
                access: reader.clone(),
            }
            .run(doorbell.clone(), changes.clone()),
        );
        tokio::spawn(hand_out_moves(
            db.clone(),
            positions_rx,
            moves.clone(),
            reader,
        ));
        if postgres {
            tokio::spawn(listen(
                url.to_owned(),
                doorbell.clone(),
                positions.clone(),
                menus.clone(),
            ));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                changes,
                moves,
                menus,
                doorbell,
                moved: positions,
                postgres: postgres.then_some(db),
                access,
            }),
        })
    }

    /// Says that an API token was revoked or a user's roles changed (after it committed), so
    /// every replica's running subscriptions take it now rather than within a second.
    pub async fn access_changed(&self) {
        self.inner.doorbell.notify_one();
        self.ring(Doorbell::AccessChanged).await;
    }

    /// `viewer` as a running subscription follows it: with access changes from now on, and
    /// those read since it signed in (an error if they already end it).
    pub fn follower(&self, viewer: Viewer) -> Result<Follower, AccessEnded> {
        let registered = self.inner.access.watch(&viewer, true);
        let mut follower = Follower {
            viewer,
            log: self.inner.access.clone(),
            taken: None,
            registered,
        };
        follower.refresh()?;
        Ok(follower)
    }

    /// Says that orders changed. Call it after the change committed; the change itself is
    /// already in the log, so this only makes every replica look now rather than within a
    /// second. Never blocks on subscribers.
    pub async fn order_changed(&self) {
        // This process looks at once, without waiting for its own notification; so does its
        // webhook sender (the change wrote its deliveries).
        self.inner.doorbell.notify_one();
        crate::webhooks::wake();
        self.ring(Doorbell::OrderChanged).await;
    }

    /// Says that the courier of `order_id` reported a position (after it committed).
    pub async fn courier_moved(&self, order_id: i64) {
        if !self.ring(Doorbell::CourierMoved { order_id }).await {
            let _ = self.inner.moved.send(order_id);
        }
    }

    /// Says that `restaurant_id`'s menu changed (after it committed), to every replica.
    pub async fn menu_changed(&self, restaurant_id: i64) {
        if !self.ring(Doorbell::MenuChanged { restaurant_id }).await {
            let _ = self.inner.menus.send(MenuChange { restaurant_id });
        }
    }

    /// Every menu change announced from now on. Each says only which menu changed: a
    /// subscriber that falls behind loses nothing by skipping to the newest.
    pub fn menus(&self) -> broadcast::Receiver<MenuChange> {
        self.inner.menus.subscribe()
    }

    /// Notifies every replica; false when there is no PostgreSQL to notify through (or it
    /// failed, and this process has to hear of it by itself).
    async fn ring(&self, doorbell: Doorbell) -> bool {
        let Some(db) = &self.inner.postgres else {
            return false;
        };
        let payload = serde_json::to_string(&doorbell).expect("doorbells serialize");
        let notify = Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), payload.into()],
        );
        match db.execute_raw(notify).await {
            Ok(_) => true,
            Err(error) => {
                // The change is committed; the other replicas find it within a second.
                tracing::warn!(%error, "ringing the other replicas failed");
                false
            }
        }
    }

    /// Every order change committed from now on, in log order.
    pub fn changes(&self) -> broadcast::Receiver<Arc<OrderChange>> {
        self.inner.changes.subscribe()
    }

    /// Every courier position reported from now on.
    pub fn moves(&self) -> broadcast::Receiver<Arc<CourierMove>> {
        self.inner.moves.subscribe()
    }
}

/// The newest id in the log, where a new reader starts.
async fn last_id(db: &DatabaseConnection) -> Result<i64, DbErr> {
    let newest = order_event::Entity::find()
        .select_only()
        .column(order_event::Column::Id)
        .order_by_desc(order_event::Column::Id)
        .limit(1)
        .into_tuple::<i64>()
        .one(db)
        .await?;
    Ok(newest.unwrap_or(0))
}

/// Reads the log in id order and hands each change out once.
struct LogReader {
    db: DatabaseConnection,
    /// The highest id handed out.
    last: i64,
    /// Ids below `last` not seen yet (a transaction still in flight, or rolled back), and since
    /// when they are missing.
    gaps: BTreeMap<i64, Instant>,
    /// Since when reading fails (logged once per outage).
    failing_since: Option<Instant>,
    access: Arc<tokio::sync::Mutex<AccessReader>>,
}

impl LogReader {
    async fn run(mut self, doorbell: Arc<Notify>, out: broadcast::Sender<Arc<OrderChange>>) {
        loop {
            tokio::select! {
                // Commits right behind the one that rang are read with it: under a stream of
                // writes one read (and one wake-up of the webhook sender) serves several.
                () = doorbell.notified() => tokio::time::sleep(GATHER).await,
                () = tokio::time::sleep(POLL) => {}
            }
            match self.catch_up(&out).await {
                Ok(()) => {
                    if let Some(since) = self.failing_since.take() {
                        tracing::info!(
                            after_ms = since.elapsed().as_millis() as u64,
                            "the order event log is readable again; caught up"
                        );
                    }
                }
                Err(error) => {
                    if self.failing_since.is_none() {
                        self.failing_since = Some(Instant::now());
                        tracing::warn!(%error, "cannot read the order event log; retrying every second");
                    }
                }
            }
        }
    }

    /// Hands out every row after `last` (and any gap that appeared), batch by batch.
    async fn catch_up(&mut self, out: &broadcast::Sender<Arc<OrderChange>>) -> Result<(), DbErr> {
        loop {
            self.gaps.retain(|_, since| since.elapsed() < GAP_WAIT);
            let mut wanted = Condition::any().add(order_event::Column::Id.gt(self.last));
            if !self.gaps.is_empty() {
                wanted = wanted.add(order_event::Column::Id.is_in(self.gaps.keys().copied()));
            }
            let events = order_event::Entity::find()
                .filter(wanted)
                .order_by_asc(order_event::Column::Id)
                .limit(BATCH)
                .all(&self.db)
                .await?;
            let full = events.len() as u64 == BATCH;
            if events.is_empty() {
                return self.access.lock().await.look(&self.db).await.map(drop);
            }
            // Another replica's change may have queued webhooks: this one helps send them.
            crate::webhooks::wake();
            let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
            let mut changes = self.snapshots(events).await?;
            // Read after the batch: an access change that committed before any of its changes
            // is taken by every subscriber before they are handed out.
            let look = self.access.lock().await.look(&self.db).await?;
            for change in &mut changes {
                change.look = look;
            }
            // Every row read counts as handed out, also one whose order is gone (nobody to tell).
            for id in ids {
                self.advance(id);
            }
            for change in changes {
                let _ = out.send(Arc::new(change));
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Marks `id` handed out: a gap filled, or the new `last` (ids skipped on the way become
    /// gaps).
    fn advance(&mut self, id: i64) {
        if self.gaps.remove(&id).is_some() || id <= self.last {
            return;
        }
        let now = Instant::now();
        let skipped = (self.last + 1).max(id - MAX_GAPS)..id;
        for missing in skipped {
            self.gaps.insert(missing, now);
        }
        self.last = id;
    }

    /// The orders as `events` left them, with who may see them: three statements for the
    /// whole batch.
    async fn snapshots(&self, events: Vec<order_event::Model>) -> Result<Vec<OrderChange>, DbErr> {
        let order_ids: Vec<i64> = events
            .iter()
            .map(|event| event.order_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let backend = self.db.get_database_backend();
        let orders: HashMap<i64, order::Model> = order::Entity::find()
            .filter(one_of(order::Column::Id, &order_ids, backend))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|order| (order.id, order))
            .collect();
        let couriers: HashMap<i64, i64> = delivery::Entity::find()
            .filter(one_of(delivery::Column::OrderId, &order_ids, backend))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|delivery| (delivery.order_id, delivery.courier_id))
            .collect();
        let staff = staff_of(&self.db, orders.values().map(|order| order.restaurant_id)).await?;
        Ok(events
            .into_iter()
            .filter_map(|event| {
                // An order deleted since (its events with it) has nobody left to tell.
                let mut order = orders.get(&event.order_id)?.clone();
                order.status = event.to_status;
                order.version = event.version;
                order.updated_at = event.created_at;
                Some(OrderChange {
                    courier_id: couriers.get(&order.id).copied(),
                    staff: staff.get(&order.restaurant_id).cloned().unwrap_or_default(),
                    order: Arc::new(order),
                    event: Arc::new(event),
                    look: 0,
                })
            })
            .collect())
    }
}

/// Reads access changes into the [`AccessLog`], each once.
struct AccessReader {
    log: Arc<AccessLog>,
    /// When the last look began; `None` while nobody follows (the next look reaches back
    /// [`ACCESS_OVERLAP`] from now: every subscription signed in after what is older).
    since: Option<DateTime<Utc>>,
    /// Revoked tokens read, with their time, while the looks still reach them.
    revoked: HashMap<i64, DateTime<Utc>>,
    /// Users whose roles changed, with the time of the change read, likewise.
    roles: HashMap<i64, DateTime<Utc>>,
}

impl AccessReader {
    /// Tokens revoked and roles changed since the last look (and [`ACCESS_OVERLAP`] before it,
    /// for changes whose time was taken before a slow commit): two statements, through the
    /// indexes on `api_tokens.revoked_at` and `users.roles_changed_at`. Nothing while no
    /// subscription runs. Only changes of followed tokens and users are kept; one of somebody
    /// who starts following later is read again by the next look, as it was not counted read.
    ///
    /// Returns the look's number, for what is handed out after it ([`Stamped`]).
    async fn look(&mut self, db: &DatabaseConnection) -> Result<u64, DbErr> {
        {
            let mut watched = self.log.watched();
            if watched.users.is_empty() {
                watched.looks += 1;
                self.since = None;
                return Ok(watched.looks);
            }
        }
        let started = Utc::now();
        let overlap = chrono::Duration::from_std(ACCESS_OVERLAP).expect("a minute fits");
        let from = self.since.unwrap_or(started) - overlap;
        let revoked: Vec<(i64, Option<DateTime<Utc>>)> = api_token::Entity::find()
            .select_only()
            .column(api_token::Column::Id)
            .column(api_token::Column::RevokedAt)
            .filter(api_token::Column::RevokedAt.gte(from))
            .into_tuple()
            .all(db)
            .await?;
        let roles: Vec<(i64, serde_json::Value, Option<DateTime<Utc>>)> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::Roles)
            .column(user::Column::RolesChangedAt)
            .filter(user::Column::RolesChangedAt.gte(from))
            .into_tuple()
            .all(db)
            .await?;
        let mut changes = Vec::new();
        let mut watched = self.log.watched();
        watched.looks += 1;
        let look = watched.looks;
        for (token_id, at) in revoked {
            let at = at.unwrap_or(started);
            if watched.tokens.contains_key(&token_id) && self.revoked.insert(token_id, at).is_none()
            {
                changes.push(AccessChange::TokenRevoked { token_id });
            }
        }
        for (user_id, stored, at) in roles {
            let at = at.unwrap_or(started);
            if watched.users.contains_key(&user_id) && self.roles.insert(user_id, at) != Some(at) {
                changes.push(AccessChange::RolesChanged {
                    user_id,
                    roles: Role::of_stored(&stored),
                    at,
                });
            }
        }
        drop(watched);
        // What the next look no longer reaches cannot be read twice.
        let next_from = started - overlap;
        self.revoked.retain(|_, at| *at >= next_from);
        self.roles.retain(|_, at| *at >= next_from);
        self.since = Some(started);
        self.log.append(changes);
        Ok(look)
    }
}

/// The staff of each of `restaurants`, by restaurant.
async fn staff_of(
    db: &DatabaseConnection,
    restaurants: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, Arc<HashSet<i64>>>, DbErr> {
    let restaurants: Vec<i64> = restaurants.collect::<HashSet<_>>().into_iter().collect();
    let mut staff: HashMap<i64, HashSet<i64>> = HashMap::new();
    for member in restaurant_staff::Entity::find()
        .filter(one_of(
            restaurant_staff::Column::RestaurantId,
            &restaurants,
            db.get_database_backend(),
        ))
        .all(db)
        .await?
    {
        staff
            .entry(member.restaurant_id)
            .or_default()
            .insert(member.user_id);
    }
    Ok(staff
        .into_iter()
        .map(|(restaurant, users)| (restaurant, Arc::new(users)))
        .collect())
}

/// Reads each reported position once and hands it to this process's subscribers, after a look
/// at access changes (as the log reader does before each batch): a token revoked before the
/// position was reported ends its subscriptions before the position reaches them.
async fn hand_out_moves(
    db: DatabaseConnection,
    mut moved: mpsc::UnboundedReceiver<i64>,
    out: broadcast::Sender<Arc<CourierMove>>,
    access: Arc<tokio::sync::Mutex<AccessReader>>,
) {
    while let Some(order_id) = moved.recv().await {
        if out.receiver_count() == 0 {
            continue;
        }
        let read = match read_move(&db, order_id).await {
            Ok(read) => access.lock().await.look(&db).await.map(|look| {
                read.map(|mut change| {
                    change.look = look;
                    change
                })
            }),
            Err(error) => Err(error),
        };
        match read {
            Ok(Some(change)) => {
                let _ = out.send(Arc::new(change));
            }
            Ok(None) => {}
            // The next position replaces this one anyway.
            Err(error) => tracing::warn!(%error, order_id, "cannot read a courier's position"),
        }
    }
}

async fn read_move(db: &DatabaseConnection, order_id: i64) -> Result<Option<CourierMove>, DbErr> {
    let Some(delivery) = delivery::Entity::find()
        .filter(delivery::Column::OrderId.eq(order_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(order) = order::Entity::find_by_id(order_id).one(db).await? else {
        return Ok(None);
    };
    let staff = staff_of(db, std::iter::once(order.restaurant_id))
        .await?
        .remove(&order.restaurant_id)
        .unwrap_or_default();
    Ok(Some(CourierMove {
        delivery: Arc::new(delivery),
        order,
        staff,
        look: 0,
    }))
}

/// Receives the replicas' doorbells, reconnecting when the connection drops; after every
/// (re)connect the reader looks at the log, for what was committed while nobody listened.
async fn listen(
    url: String,
    doorbell: Arc<Notify>,
    moved: mpsc::UnboundedSender<i64>,
    menus: broadcast::Sender<MenuChange>,
) {
    use sea_orm::sqlx::postgres::PgListener;
    let mut failing = false;
    loop {
        let mut listener = match PgListener::connect(&url).await {
            Ok(listener) => listener,
            Err(error) => {
                if !failing {
                    tracing::error!(%error, "cannot listen for changes; retrying every second");
                    failing = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::error!(%error, "cannot listen for changes; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        failing = false;
        doorbell.notify_one();
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<Doorbell>(notification.payload()) {
                        // New rows in the log, or access changes: the reader looks at both.
                        Ok(Doorbell::OrderChanged | Doorbell::AccessChanged) => {
                            doorbell.notify_one();
                        }
                        Ok(Doorbell::CourierMoved { order_id }) => {
                            let _ = moved.send(order_id);
                        }
                        Ok(Doorbell::MenuChanged { restaurant_id }) => {
                            let _ = menus.send(MenuChange { restaurant_id });
                        }
                        Err(error) => tracing::warn!(%error, "ignoring a malformed doorbell"),
                    }
                }
                // The connection was lost; notifications sent meanwhile are gone, the log is not.
                Ok(None) => {
                    tracing::warn!("change listener lost its connection; reconnecting");
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "change listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}
