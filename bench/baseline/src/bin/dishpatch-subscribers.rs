//! N `graphql-transport-ws` subscribers on one `restaurantOrders` feed, for
//! bench/subscriptions.py: the same command line, stdin commands and stdout lines as
//! bench/subscribers.mjs, in one thread of Rust instead of Node, so that the client takes less
//! of the two cores it shares with the servers (Node needs some 13 µs of CPU per message).
//!
//! ```text
//! BENCH_TOKEN=... dishpatch-subscribers --urls ws://127.0.0.1:18090/graphql \
//!     --count 1000 --restaurant <global id> [--batch 200] [--max-seconds 900]
//! ```
//!
//! It opens --count sockets, spread round-robin over --urls, --batch at a time: each sends
//! `connection_init` with the bearer token, waits for `connection_ack`, then subscribes. Then
//! it prints `{"type":"ready",...}`. Each `next` is stamped on arrival (ms since the epoch)
//! under `<order id>:<version>`; when a key has reached every subscribed client it prints
//! `{"type":"all","key":k,"t":last}`. Commands on stdin, one a line: `mark` (start counting
//! this process's CPU time), `cpu` (CPU time since `mark`), `done` (print the summary and exit;
//! also on stdin closing and after --max-seconds).

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    io::Write,
    rc::Rc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig,
};

const QUERY: &str =
    "subscription($r: ID!) { restaurantOrders(restaurantId: $r) { id status version } }";

#[derive(Parser)]
struct Args {
    /// WebSocket addresses, comma-separated; sockets are spread over them round-robin.
    #[arg(long, value_delimiter = ',')]
    urls: Vec<String>,
    #[arg(long, default_value_t = 1000)]
    count: usize,
    #[arg(long, default_value_t = 200)]
    batch: usize,
    /// The restaurant's global id.
    #[arg(long)]
    restaurant: String,
    /// Seconds a batch may take to subscribe.
    #[arg(long, default_value_t = 60)]
    batch_timeout: u64,
    #[arg(long, default_value_t = 900)]
    max_seconds: u64,
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

fn emit(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// User and system CPU time of this process, in ms, from /proc/self/stat (in clock ticks of
/// 10 ms, as bench/subscriptions.py reads the servers').
fn cpu_ms() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which may hold spaces) and its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 of the line; 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) * 10.0, ticks(12) * 10.0)
}

struct Event {
    /// Receive time per client; NaN: not received.
    times: Vec<f64>,
    count: usize,
    dups: usize,
    announced: bool,
}

#[derive(Default)]
struct State {
    events: HashMap<String, Event>,
    /// The clients that subscribed and are still open, once every batch was tried.
    expected: usize,
    ready: bool,
    stopping: bool,
    closes: BTreeMap<String, usize>,
    failures: BTreeMap<String, usize>,
    samples: Vec<Value>,
    errors: usize,
    completes: usize,
    unparsable: usize,
    subscribed: usize,
    cpu_mark: Option<(f64, f64)>,
}

impl State {
    fn sample(&mut self, what: Value) {
        if self.samples.len() < 20 {
            self.samples.push(what);
        }
    }

    fn record(&mut self, count: usize, key: &str, client: usize, t: f64) {
        let expected = self.expected;
        let ready = self.ready;
        let event = self.events.entry(key.to_owned()).or_insert_with(|| Event {
            times: vec![f64::NAN; count],
            count: 0,
            dups: 0,
            announced: false,
        });
        if !event.times[client].is_nan() {
            event.dups += 1;
            return;
        }
        event.times[client] = t;
        event.count += 1;
        if ready && !event.announced && event.count >= expected {
            event.announced = true;
            emit(&json!({"type": "all", "key": key, "t": t}));
        }
    }

    /// Announces the keys every client still open has received.
    fn announce_complete(&mut self) {
        for (key, event) in &mut self.events {
            if !event.announced && event.count >= self.expected {
                event.announced = true;
                let last = event
                    .times
                    .iter()
                    .copied()
                    .filter(|t| !t.is_nan())
                    .fold(f64::MIN, f64::max);
                emit(&json!({"type": "all", "key": key, "t": last}));
            }
        }
    }

    fn cpu(&self) -> Value {
        let (user, system) = cpu_ms();
        let (mark_user, mark_system) = self.cpu_mark.unwrap_or((0.0, 0.0));
        json!({"user_ms": user - mark_user, "system_ms": system - mark_system})
    }

    fn finish(&mut self, reason: &str, clients: usize) -> ! {
        self.stopping = true;
        let mut summary = serde_json::Map::new();
        for (key, event) in &self.events {
            let mut times: Vec<f64> = event
                .times
                .iter()
                .copied()
                .filter(|t| !t.is_nan())
                .collect();
            times.sort_by(f64::total_cmp);
            let n = times.len();
            let median = match n {
                0 => Value::Null,
                n if n % 2 == 1 => json!(times[(n - 1) / 2]),
                n => json!(f64::midpoint(times[n / 2 - 1], times[n / 2])),
            };
            summary.insert(
                key.clone(),
                json!({"count": event.count, "dups": event.dups, "min": times.first(),
                       "median": median, "max": times.last()}),
            );
        }
        emit(&json!({
            "type": "summary", "reason": reason, "clients": clients, "subscribed": self.subscribed,
            "open": self.expected, "events": summary, "closes": self.closes,
            "failures": self.failures, "errors": self.errors, "completes": self.completes,
            "unparsable": self.unparsable, "samples": self.samples, "cpu": self.cpu(),
        }));
        std::process::exit(0);
    }
}

#[derive(Deserialize)]
struct ServerMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    payload: Option<Payload>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    errors: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    restaurant_orders: Option<Order>,
}

#[derive(Deserialize)]
struct Order {
    id: String,
    version: i64,
}

type Shared = Rc<RefCell<State>>;

/// A client that could not subscribe: counts `why` and tells its batch, once.
fn fail(state: &Shared, subscribed: &mut Option<tokio::sync::oneshot::Sender<bool>>, why: String) {
    if let Some(tell) = subscribed.take() {
        *state.borrow_mut().failures.entry(why).or_default() += 1;
        let _ = tell.send(false);
    }
}

/// Client `index`: connects, subscribes (then `subscribed` gets `true`, or `false` if it could
/// not), and reads until the socket closes.
async fn client(
    index: usize,
    args: Rc<Args>,
    token: Rc<String>,
    state: Shared,
    subscribed: tokio::sync::oneshot::Sender<bool>,
) {
    let mut subscribed = Some(subscribed);
    let url = &args.urls[index % args.urls.len()];
    let mut request = match url.as_str().into_client_request() {
        Ok(request) => request,
        Err(error) => return fail(&state, &mut subscribed, format!("error: {error}")),
    };
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let connect = tokio_tungstenite::connect_async_with_config(
        request,
        // tungstenite zeroes its whole read buffer (128 KiB by default) before each read; the
        // messages here are a few hundred bytes.
        Some(WebSocketConfig::default().read_buffer_size(4096)),
        true,
    );
    let mut ws = match connect.await {
        Ok((ws, _)) => ws,
        Err(error) => return fail(&state, &mut subscribed, format!("error: {error}")),
    };
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    if let Err(error) = ws.send(Message::text(init.to_string())).await {
        return fail(&state, &mut subscribed, format!("error: {error}"));
    }
    let mut is_subscribed = false;
    while let Some(message) = ws.next().await {
        let t = now_ms();
        let text = match message {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(frame)) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                });
                return closed(&state, &mut subscribed, index, is_subscribed, code, &reason);
            }
            Ok(_) => continue,
            Err(error) => {
                return closed(
                    &state,
                    &mut subscribed,
                    index,
                    is_subscribed,
                    1006,
                    &error.to_string(),
                );
            }
        };
        let Ok(message) = serde_json::from_str::<ServerMessage>(&text) else {
            state.borrow_mut().unparsable += 1;
            continue;
        };
        match message.kind {
            "next" => {
                let payload = message.payload.unwrap_or(Payload {
                    data: None,
                    errors: None,
                });
                let mut state = state.borrow_mut();
                if let Some(errors) = payload.errors {
                    state.errors += 1;
                    state.sample(json!({"client": index, "errors": errors}));
                }
                if let Some(order) = payload.data.and_then(|data| data.restaurant_orders) {
                    let key = format!("{}:{}", order.id, order.version);
                    state.record(args.count, &key, index, t);
                }
            }
            "connection_ack" => {
                let subscribe = json!({"id": "1", "type": "subscribe",
                    "payload": {"query": QUERY, "variables": {"r": args.restaurant}}});
                match ws.send(Message::text(subscribe.to_string())).await {
                    Ok(()) => {
                        is_subscribed = true;
                        if let Some(tell) = subscribed.take() {
                            let _ = tell.send(true);
                        }
                    }
                    Err(error) => fail(&state, &mut subscribed, format!("subscribe: {error}")),
                }
            }
            "ping" => {
                let _ = ws.send(Message::text(r#"{"type":"pong"}"#)).await;
            }
            "pong" => {}
            "error" => {
                let mut state = state.borrow_mut();
                state.errors += 1;
                state.sample(json!({"client": index, "error": text.as_str()}));
            }
            "complete" => {
                let mut state = state.borrow_mut();
                state.completes += 1;
                state.sample(json!({"client": index, "complete": text.as_str()}));
            }
            _ => state
                .borrow_mut()
                .sample(json!({"client": index, "unexpected": text.as_str()})),
        }
    }
    closed(
        &state,
        &mut subscribed,
        index,
        is_subscribed,
        1006,
        "the stream ended",
    );
}

fn closed(
    state: &Shared,
    subscribed: &mut Option<tokio::sync::oneshot::Sender<bool>>,
    index: usize,
    is_subscribed: bool,
    code: u16,
    reason: &str,
) {
    if subscribed.is_some() {
        return fail(
            state,
            subscribed,
            format!("closed {code} before subscribing: {reason}"),
        );
    }
    let mut state = state.borrow_mut();
    if !state.stopping && is_subscribed {
        *state.closes.entry(code.to_string()).or_default() += 1;
        state.sample(json!({"client": index, "closed": code, "reason": reason}));
        if state.ready {
            // Keys still arriving are complete once every client still open has them.
            state.expected -= 1;
            state.announce_complete();
        }
    }
}

fn main() {
    let args = Args::parse();
    let token = std::env::var("BENCH_TOKEN").unwrap_or_default();
    if args.urls.is_empty() || args.count == 0 || token.is_empty() {
        eprintln!(
            "usage: BENCH_TOKEN=... dishpatch-subscribers --urls ws://... --count N --restaurant ID"
        );
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, run(Rc::new(args), Rc::new(token)));
}

async fn run(args: Rc<Args>, token: Rc<String>) {
    let state: Shared = Rc::new(RefCell::new(State {
        expected: args.count,
        ..State::default()
    }));
    let count = args.count;
    // Commands on stdin.
    tokio::task::spawn_local({
        let state = state.clone();
        async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match line.trim() {
                    "mark" => {
                        state.borrow_mut().cpu_mark = Some(cpu_ms());
                        emit(&json!({"type": "marked"}));
                    }
                    "cpu" => {
                        let mut line = state.borrow().cpu();
                        line["type"] = json!("cpu");
                        emit(&line);
                    }
                    "done" => state.borrow_mut().finish("done", count),
                    _ => {}
                }
            }
            state.borrow_mut().finish("stdin closed", count);
        }
    });
    tokio::task::spawn_local({
        let state = state.clone();
        let after = Duration::from_secs(args.max_seconds);
        async move {
            tokio::time::sleep(after).await;
            state.borrow_mut().finish("max-seconds", count);
        }
    });
    let started = now_ms();
    let mut subscribed = 0;
    let timeout = Duration::from_secs(args.batch_timeout);
    for first in (0..count).step_by(args.batch.max(1)) {
        let last = (first + args.batch.max(1)).min(count);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut waits = Vec::new();
        for index in first..last {
            let (tell, told) = tokio::sync::oneshot::channel();
            let handle = tokio::task::spawn_local(client(
                index,
                args.clone(),
                token.clone(),
                state.clone(),
                tell,
            ));
            waits.push((told, handle));
        }
        for (told, handle) in waits {
            match tokio::time::timeout_at(deadline, told).await {
                Ok(Ok(true)) => subscribed += 1,
                Ok(_) => {}
                Err(_) => {
                    handle.abort();
                    *state
                        .borrow_mut()
                        .failures
                        .entry("no subscription within the batch timeout".into())
                        .or_default() += 1;
                }
            }
        }
        if last % 1000 < args.batch || last == count {
            eprintln!(
                "subscribers: {subscribed} of {last} subscribed ({:.1} s)",
                (now_ms() - started) / 1000.0
            );
        }
    }
    {
        let mut state = state.borrow_mut();
        state.subscribed = subscribed;
        // Clients that subscribed and closed again already are not waited for.
        state.expected = subscribed - state.closes.values().sum::<usize>();
        state.ready = true;
        let failures = state.failures.clone();
        emit(
            &json!({"type": "ready", "subscribed": subscribed, "open": state.expected,
                     "failed": count - subscribed, "failures": failures,
                     "ms": now_ms() - started}),
        );
        // Keys that already reached everyone before `ready` (none, normally) are announced now.
        state.announce_complete();
    }
    std::future::pending::<()>().await;
}
