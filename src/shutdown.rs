//! Stopping without losing anything: what the server does between SIGTERM (or Ctrl-C) and
//! exiting.
//!
//! When the signal comes, `/readyz` answers 503 at once (a load balancer stops sending),
//! responses carry `Connection: close` (a client does not reuse a connection that is about
//! to close), every WebSocket is closed with 1001 "going away" (clients reconnect to another
//! replica instead of waiting for the grace period to cut them), and actix stops accepting
//! connections and lets every request it has received finish.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// Whether the server is draining, for the handlers and the WebSocket loops.
#[derive(Debug)]
pub struct Drain {
    draining: AtomicBool,
    going_away: watch::Sender<bool>,
}

impl Default for Drain {
    fn default() -> Self {
        Self {
            draining: AtomicBool::new(false),
            going_away: watch::channel(false).0,
        }
    }
}

impl Drain {
    /// Starts draining: from now on the server says it is not ready and closes what it can.
    pub fn begin(&self) {
        self.draining.store(true, Ordering::Relaxed);
        self.going_away.send_replace(true);
    }

    /// Whether draining has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Changes to `true` when draining begins (already `true` if it has).
    pub fn going_away(&self) -> watch::Receiver<bool> {
        self.going_away.subscribe()
    }
}
