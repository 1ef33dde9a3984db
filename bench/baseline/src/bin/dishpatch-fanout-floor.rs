//! The floor under bench/subscriptions.py: a WebSocket server that does nothing for an event
//! but write one short `next` message to every subscriber, so that what dishpatch's fan-out
//! costs can be told from what the machine's sockets cost (`bench/subscriptions_floor.py`).
//!
//! ```text
//! dishpatch-fanout-floor --listen 127.0.0.1:18190 [--workers 2] [--mode tasks|raw]
//! ```
//!
//! It speaks as much `graphql-transport-ws` as dishpatch-subscribers needs: `connection_init`
//! is acknowledged, `subscribe` is remembered, `ping` is answered. Each line `event` on stdin is
//! one event, and every subscribed socket is sent its own message (`{"type":"next",...}` with
//! the order `floor-<n>` at version 1, the fields dishpatch's subscription asks for); the line
//! `{"type":"sent","key":"floor-<n>:1","t":<ms since the epoch>}` is printed just before. It
//! prints `{"type":"listening"}` once it accepts connections, and exits when stdin closes.
//!
//! Two ways to send, both on `--workers` threads:
//! - `tasks`: a task per socket on tokio's multi-threaded runtime, tokio-tungstenite for the
//!   protocol; the event is broadcast to every socket's task, as dishpatch hands it to every
//!   subscription. A plain WebSocket server.
//! - `raw`: what no server can go below. A single-threaded runtime per thread, each with its
//!   own listener on the port (`SO_REUSEPORT`), and the frames read and written by hand; for
//!   an event, each thread walks its subscribed sockets and makes one `write` call for each,
//!   with no task woken.

use std::{
    io::Write,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::{io::AsyncBufReadExt, net::TcpListener, sync::broadcast};
use tokio_tungstenite::tungstenite::{
    Message,
    handshake::server::{Request, Response},
    http::HeaderValue,
};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18190")]
    listen: String,
    /// Runtime worker threads (dishpatch runs one actix worker per core).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    #[arg(long, value_enum, default_value_t = Mode::Tasks)]
    mode: Mode,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Mode {
    Tasks,
    Raw,
}

#[derive(Deserialize)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let workers = args.workers.max(1);
    // Events in flight per socket: more than the benchmark ever has outstanding.
    let (events, _) = broadcast::channel::<Arc<str>>(1024);
    match args.mode {
        Mode::Tasks => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()?
            .block_on(async {
                let listener = TcpListener::bind(&args.listen).await?;
                let acceptor = events.clone();
                tokio::spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(socket(stream, acceptor.subscribe()));
                    }
                });
                announce(events).await
            }),
        Mode::Raw => {
            let address: std::net::SocketAddr =
                args.listen.parse().map_err(std::io::Error::other)?;
            let (bound, listening) = std::sync::mpsc::channel();
            for _ in 0..workers {
                let (receiver, bound) = (events.subscribe(), bound.clone());
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    let outcome = runtime.and_then(|runtime| {
                        tokio::task::LocalSet::new()
                            .block_on(&runtime, raw::worker(address, receiver, bound.clone()))
                    });
                    if let Err(error) = outcome {
                        let _ = bound.send(Err(error));
                    }
                });
            }
            for _ in 0..workers {
                listening.recv().map_err(std::io::Error::other)??;
            }
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(announce(events))
        }
    }
}

/// Prints that it listens, then turns each `event` line on stdin into an event.
async fn announce(events: broadcast::Sender<Arc<str>>) -> std::io::Result<()> {
    println!("{}", json!({"type": "listening"}));
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut sent = 0u64;
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() != "event" {
            continue;
        }
        sent += 1;
        let order = format!("floor-{sent}");
        let line = json!({"type": "sent", "key": format!("{order}:1"), "t": now_ms()});
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        let _ = events.send(order.into());
    }
    Ok(())
}

/// Answers the handshake with the subprotocol dishpatch-subscribers asks for.
#[allow(clippy::result_large_err, clippy::unnecessary_wraps)] // the signature tungstenite's callback takes
fn with_protocol(
    _: &Request,
    mut response: Response,
) -> Result<Response, tokio_tungstenite::tungstenite::handshake::server::ErrorResponse> {
    response.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    Ok(response)
}

async fn socket(stream: tokio::net::TcpStream, mut events: broadcast::Receiver<Arc<str>>) {
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, with_protocol).await else {
        return;
    };
    let (mut sink, mut from_client) = ws.split();
    // The subscription's id, JSON-encoded, once the client subscribed.
    let mut subscription: Option<String> = None;
    loop {
        tokio::select! {
            message = from_client.next() => {
                let Some(Ok(message)) = message else { return };
                let Message::Text(text) = message else { continue };
                let Ok(message) = serde_json::from_str::<ClientMessage>(&text) else { return };
                let answer = match message.kind.as_str() {
                    "connection_init" => Some(r#"{"type":"connection_ack"}"#),
                    "ping" => Some(r#"{"type":"pong"}"#),
                    "subscribe" => {
                        subscription = message.id.map(|id| json!(id).to_string());
                        None
                    }
                    _ => None,
                };
                if let Some(answer) = answer
                    && sink.send(Message::text(answer)).await.is_err()
                {
                    return;
                }
            }
            event = events.recv() => match event {
                Ok(order) => {
                    let Some(id) = &subscription else { continue };
                    let next = format!(
                        r#"{{"type":"next","id":{id},"payload":{{"data":{{"restaurantOrders":{{"id":"{order}","status":"PLACED","version":1}}}}}}}}"#
                    );
                    if sink.send(Message::text(next)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// The `raw` mode: hand-made frames, one `write` per socket and event.
mod raw {
    use std::{cell::RefCell, net::SocketAddr, rc::Rc, sync::Arc};

    use tokio::{
        net::{TcpSocket, TcpStream},
        sync::broadcast,
    };

    use super::ClientMessage;

    struct Subscriber {
        connection: u64,
        stream: Rc<TcpStream>,
        /// The subscription's id, JSON-encoded.
        id: String,
    }

    type Subscribers = Rc<RefCell<Vec<Subscriber>>>;

    pub async fn worker(
        address: SocketAddr,
        mut events: broadcast::Receiver<Arc<str>>,
        bound: std::sync::mpsc::Sender<std::io::Result<()>>,
    ) -> std::io::Result<()> {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseport(true)?;
        socket.set_reuseaddr(true)?;
        socket.bind(address)?;
        let listener = socket.listen(4096)?;
        let _ = bound.send(Ok(()));
        let subscribers = Subscribers::default();
        let accepted = subscribers.clone();
        tokio::task::spawn_local(async move {
            let mut connection = 0;
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                connection += 1;
                tokio::task::spawn_local(serve(stream, connection, accepted.clone()));
            }
        });
        let mut short = 0u64;
        loop {
            match events.recv().await {
                Ok(order) => {
                    for subscriber in subscribers.borrow().iter() {
                        let next = format!(
                            r#"{{"type":"next","id":{},"payload":{{"data":{{"restaurantOrders":{{"id":"{order}","status":"PLACED","version":1}}}}}}}}"#,
                            subscriber.id
                        );
                        let frame = frame(1, next.as_bytes());
                        if !matches!(subscriber.stream.try_write(&frame), Ok(n) if n == frame.len())
                        {
                            short += 1;
                            eprintln!("a write did not go out whole ({short} so far)");
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }

    /// A server frame (unmasked, unfragmented).
    fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = Vec::with_capacity(payload.len() + 10);
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(n as u8),
            n if n <= 0xffff => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(payload);
        frame
    }

    /// The first whole client frame in `buffer`: its opcode, unmasked payload and length.
    fn parse(buffer: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
        let (&first, &second) = (buffer.first()?, buffer.get(1)?);
        let mut length = usize::from(second & 0x7f);
        let mut at = 2;
        if length == 126 {
            length = usize::from(u16::from_be_bytes(buffer.get(2..4)?.try_into().ok()?));
            at = 4;
        } else if length == 127 {
            length =
                usize::try_from(u64::from_be_bytes(buffer.get(2..10)?.try_into().ok()?)).ok()?;
            at = 10;
        }
        let mask: Option<[u8; 4]> = if second & 0x80 != 0 {
            let mask = buffer.get(at..at + 4)?.try_into().ok()?;
            at += 4;
            Some(mask)
        } else {
            None
        };
        let mut payload = buffer.get(at..at + length)?.to_vec();
        if let Some(mask) = mask {
            for (index, byte) in payload.iter_mut().enumerate() {
                *byte ^= mask[index % 4];
            }
        }
        Some((first & 0x0f, payload, at + length))
    }

    async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            stream.writable().await?;
            match stream.try_write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Reads more of the stream into `buffer`; `false` once it is closed.
    async fn read(stream: &TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<bool> {
        let mut chunk = [0u8; 4096];
        loop {
            stream.readable().await?;
            match stream.try_read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    buffer.extend_from_slice(&chunk[..n]);
                    return Ok(true);
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
    }

    async fn serve(stream: TcpStream, connection: u64, subscribers: Subscribers) {
        let stream = Rc::new(stream);
        let _ = session(&stream, connection, &subscribers).await;
        subscribers
            .borrow_mut()
            .retain(|subscriber| subscriber.connection != connection);
    }

    async fn session(
        stream: &Rc<TcpStream>,
        connection: u64,
        subscribers: &Subscribers,
    ) -> std::io::Result<()> {
        let mut buffer = Vec::with_capacity(4096);
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            if buffer.len() > 16 * 1024 || !read(stream, &mut buffer).await? {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        buffer.drain(..end + 4);
        let Some(key) = head.lines().find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("sec-websocket-key")
                .then(|| value.trim())
        }) else {
            return Ok(());
        };
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        );
        write_all(stream, response.as_bytes()).await?;
        loop {
            while let Some((opcode, payload, used)) = parse(&buffer) {
                buffer.drain(..used);
                match opcode {
                    1 => {
                        let Ok(message) = serde_json::from_slice::<ClientMessage>(&payload) else {
                            return Ok(());
                        };
                        match message.kind.as_str() {
                            "connection_init" => {
                                write_all(stream, &frame(1, br#"{"type":"connection_ack"}"#))
                                    .await?;
                            }
                            "ping" => write_all(stream, &frame(1, br#"{"type":"pong"}"#)).await?,
                            "subscribe" => {
                                let id = serde_json::json!(message.id).to_string();
                                subscribers.borrow_mut().push(Subscriber {
                                    connection,
                                    stream: stream.clone(),
                                    id,
                                });
                            }
                            _ => {}
                        }
                    }
                    8 => {
                        write_all(stream, &frame(8, &payload)).await?;
                        return Ok(());
                    }
                    9 => write_all(stream, &frame(10, &payload)).await?,
                    _ => {}
                }
            }
            if !read(stream, &mut buffer).await? {
                return Ok(());
            }
        }
    }
}
