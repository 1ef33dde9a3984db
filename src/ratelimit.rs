//! Rate limiting by query cost: each caller (API token, user, or address for anonymous
//! callers) has a budget of points per fixed window, and every request spends its complexity.
//! Budgets live in memory, or in Redis so that replicas enforce one budget.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{config::RateLimitSettings, shared_state::Redis};

/// Who pays for a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateSubject {
    /// An API token, by a digest of the token (never the token itself).
    Token(String),
    /// A signed-in user.
    User(i64),
    /// An anonymous caller, by address.
    Address(String),
}

impl RateSubject {
    fn key(&self) -> String {
        match self {
            Self::Token(digest) => format!("token:{digest}"),
            Self::User(id) => format!("user:{id}"),
            Self::Address(address) => format!("ip:{address}"),
        }
    }
}

/// The outcome of charging a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostReport {
    /// Whether the request may run.
    pub allowed: bool,
    /// What the request costs.
    pub cost: u64,
    /// Points per window.
    pub limit: u64,
    /// Points left in this window.
    pub remaining: u64,
    /// Seconds until the window ends and the budget refills.
    pub reset_secs: u64,
    /// Window length in seconds.
    pub window_secs: u64,
}

/// Budgets per subject.
pub struct RateLimiter {
    settings: RateLimitSettings,
    store: Store,
}

enum Store {
    Memory(Mutex<MemoryWindows>),
    Redis(Redis, redis::Script),
}

/// Points used per subject in its current window.
#[derive(Default)]
struct MemoryWindows {
    used: HashMap<String, (u64, u64)>,
    /// The window in which stale entries were last swept out.
    swept: u64,
}

/// Adds the cost unless it would overrun the budget; answers `{allowed, used}`.
const CHARGE_SCRIPT: &str = r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if used + cost > tonumber(ARGV[2]) then
  return {0, used}
end
used = redis.call('INCRBY', KEYS[1], cost)
if used == cost then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {1, used}
";

/// Subjects tracked in memory at once. Past that, new subjects share one budget, so a flood
/// of addresses can neither grow the map nor get fresh budgets.
const MAX_SUBJECTS: usize = 100_000;

/// The key of the budget that subjects share once `MAX_SUBJECTS` is reached.
const OVERFLOW: &str = "overflow";

impl RateLimiter {
    /// Budgets in this process's memory.
    pub fn in_memory(settings: RateLimitSettings) -> Self {
        Self {
            settings,
            store: Store::Memory(Mutex::new(MemoryWindows::default())),
        }
    }

    /// Budgets shared through `redis`.
    pub fn shared(settings: RateLimitSettings, redis: Redis) -> Self {
        Self {
            settings,
            store: Store::Redis(redis, redis::Script::new(CHARGE_SCRIPT)),
        }
    }

    fn budget(&self, subject: &RateSubject) -> u64 {
        match subject {
            RateSubject::Token(_) => self.settings.token_points,
            RateSubject::User(_) => self.settings.user_points,
            RateSubject::Address(_) => self.settings.anonymous_points,
        }
    }

    /// Charges `cost` to `subject`. A request that would overrun the budget is refused and
    /// costs nothing. When Redis cannot be reached the request is let through (and logged):
    /// an outage of the limiter must not become an outage of the API.
    pub async fn charge(&self, subject: &RateSubject, cost: u64) -> CostReport {
        let window = self.settings.window_secs.max(1);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        let index = now / window;
        let reset_secs = (index + 1) * window - now;
        let limit = self.budget(subject);
        let (allowed, used) = match &self.store {
            Store::Memory(windows) => {
                let mut windows = windows.lock().expect("unpoisoned");
                if windows.swept != index {
                    windows
                        .used
                        .retain(|_, (entry_index, _)| *entry_index == index);
                    windows.swept = index;
                }
                let mut key = subject.key();
                if windows.used.len() >= MAX_SUBJECTS && !windows.used.contains_key(&key) {
                    OVERFLOW.clone_into(&mut key);
                }
                let entry = windows.used.entry(key).or_insert((index, 0));
                if entry.0 != index {
                    *entry = (index, 0);
                }
                if entry.1 + cost > limit {
                    (false, entry.1)
                } else {
                    entry.1 += cost;
                    (true, entry.1)
                }
            }
            Store::Redis(redis, script) => {
                let key = redis.key(&format!("ratelimit:{}:{index}", subject.key()));
                let mut connection = redis.connection.clone();
                let outcome: redis::RedisResult<(u8, u64)> = script
                    .key(key)
                    .arg(cost)
                    .arg(limit)
                    .arg(window)
                    .invoke_async(&mut connection)
                    .await;
                match outcome {
                    Ok((allowed, used)) => (allowed == 1, used),
                    Err(error) => {
                        tracing::warn!(%error, "rate limiter unavailable; letting the request through");
                        (true, 0)
                    }
                }
            }
        };
        let allowed = allowed || !self.settings.enabled;
        CostReport {
            allowed,
            cost,
            limit,
            remaining: limit.saturating_sub(used),
            reset_secs,
            window_secs: window,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(points: u64) -> RateLimiter {
        RateLimiter::in_memory(RateLimitSettings {
            anonymous_points: points,
            // Long enough that no window ends mid-test.
            window_secs: 3600,
            ..RateLimitSettings::default()
        })
    }

    #[tokio::test]
    async fn a_budget_is_spent_by_cost_and_refusals_cost_nothing() {
        let limiter = limiter(10);
        let caller = RateSubject::Address("192.0.2.1".into());
        assert!(limiter.charge(&caller, 6).await.allowed);
        let refused = limiter.charge(&caller, 6).await;
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 4);
        assert!(refused.reset_secs >= 1 && refused.reset_secs <= 3600);
        let fits = limiter.charge(&caller, 4).await;
        assert!(fits.allowed);
        assert_eq!(fits.remaining, 0);
    }

    #[tokio::test]
    async fn callers_have_separate_budgets() {
        let limiter = limiter(5);
        let first = RateSubject::Address("192.0.2.1".into());
        let second = RateSubject::Address("192.0.2.2".into());
        assert!(limiter.charge(&first, 5).await.allowed);
        assert!(!limiter.charge(&first, 1).await.allowed);
        assert!(limiter.charge(&second, 5).await.allowed);
    }
}
