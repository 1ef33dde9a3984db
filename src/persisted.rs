//! Persisted queries: Automatic Persisted Queries (Apollo's protocol, over GET and POST),
//! kept in an in-memory LRU or in Redis, and an allow-list mode in which only the operations
//! of a manifest run.
//!
//! A request names its document by `extensions.persistedQuery.sha256Hash`. Without the
//! document, a known hash runs the stored one and an unknown hash answers
//! `PERSISTED_QUERY_NOT_FOUND`, upon which the client sends both and the pair is stored.

use std::{collections::HashMap, num::NonZeroUsize, path::Path, sync::Mutex};

use anyhow::Context;
use async_graphql::Request;
use lru::LruCache;
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use crate::{config::PersistedQuerySettings, shared_state::Redis};

/// Why a persisted query could not be used; each has its own `extensions.code`.
#[derive(Debug, PartialEq, Eq)]
pub enum PersistedQueryError {
    /// The hash is not known (yet): send the document with it.
    NotFound,
    /// Persisted queries are turned off.
    NotSupported,
    /// The document does not hash to the hash sent with it.
    HashMismatch,
    /// `extensions.persistedQuery` is not `{version: 1, sha256Hash: "<hex>"}`.
    Malformed(&'static str),
    /// Allow-list mode and the operation is not on the list.
    NotInList,
}

impl PersistedQueryError {
    /// The stable `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::NotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            Self::HashMismatch | Self::Malformed(_) => crate::error::code::BAD_REQUEST,
            Self::NotInList => "PERSISTED_QUERY_NOT_IN_LIST",
        }
    }

    /// The message; Apollo clients match on the first two.
    pub fn message(&self) -> String {
        match self {
            Self::NotFound => "PersistedQueryNotFound".into(),
            Self::NotSupported => "PersistedQueryNotSupported".into(),
            Self::HashMismatch => "the query does not match its `sha256Hash`".into(),
            Self::Malformed(why) => format!("`extensions.persistedQuery` {why}"),
            Self::NotInList => {
                "only registered operations run on this server; this one is not registered".into()
            }
        }
    }
}

/// A document sent with its hash, to store once its request has run.
#[derive(Debug, PartialEq, Eq)]
pub struct Registration {
    hash: String,
    query: String,
}

/// The persisted-query store and, in allow-list mode, the list.
pub struct PersistedQueries {
    enabled: bool,
    store: Store,
    ttl_secs: u64,
    /// Documents by hash; `Some` in allow-list mode.
    allow_list: Option<HashMap<String, String>>,
}

enum Store {
    Memory(Mutex<LruCache<String, std::sync::Arc<str>>>),
    Redis(Redis),
}

/// The Apollo persisted-query manifest (`apollo-persisted-query-manifest`).
#[derive(serde::Deserialize)]
struct Manifest {
    format: String,
    operations: Vec<ManifestOperation>,
}

#[derive(serde::Deserialize)]
struct ManifestOperation {
    id: String,
    body: String,
}

/// The hex SHA-256 of `query`, as APQ names documents.
pub fn sha256_hex(query: &str) -> String {
    hex::encode(Sha256::digest(query.as_bytes()))
}

impl PersistedQueries {
    /// The store `settings` ask for, in `redis` when given; loads the allow-list.
    pub fn new(settings: &PersistedQuerySettings, redis: Option<Redis>) -> anyhow::Result<Self> {
        let allow_list = settings
            .allow_list
            .as_deref()
            .map(load_manifest)
            .transpose()?;
        let capacity = NonZeroUsize::new(settings.cache_size.max(1)).expect("at least one");
        Ok(Self {
            enabled: settings.enabled,
            store: redis.map_or_else(
                || Store::Memory(Mutex::new(LruCache::new(capacity))),
                Store::Redis,
            ),
            ttl_secs: settings.ttl_secs,
            allow_list,
        })
    }

    /// Fills in `request.query` from its persisted-query hash and checks it against the
    /// allow-list. A document sent with its hash comes back as a `Registration`, to be stored
    /// once the request has passed the limits and paid for itself.
    pub async fn resolve(
        &self,
        request: &mut Request,
    ) -> Result<Option<Registration>, PersistedQueryError> {
        let hash = match request.extensions.get("persistedQuery") {
            None => None,
            Some(value) => Some(parse_extension(value)?),
        };
        if let Some(list) = &self.allow_list {
            let hash = match hash {
                Some(hash) => hash,
                None => sha256_hex(&request.query),
            };
            let document = list.get(&hash).ok_or(PersistedQueryError::NotInList)?;
            if request.query.is_empty() {
                request.query.clone_from(document);
            } else if &request.query != document {
                return Err(PersistedQueryError::HashMismatch);
            }
            return Ok(None);
        }
        let Some(hash) = hash else {
            return Ok(None);
        };
        if !self.enabled {
            return Err(PersistedQueryError::NotSupported);
        }
        if request.query.is_empty() {
            request.query = self.get(&hash).await.ok_or(PersistedQueryError::NotFound)?;
            Ok(None)
        } else if sha256_hex(&request.query) == hash {
            Ok(Some(Registration {
                hash,
                query: request.query.clone(),
            }))
        } else {
            Err(PersistedQueryError::HashMismatch)
        }
    }

    /// Stores a document sent with its hash.
    pub async fn register(&self, registration: Registration) {
        self.put(registration.hash, &registration.query).await;
    }

    /// Whether `query` may run: always, unless in allow-list mode it is not on the list.
    pub fn allows(&self, query: &str) -> bool {
        self.allow_list
            .as_ref()
            .is_none_or(|list| list.contains_key(&sha256_hex(query)))
    }

    async fn get(&self, hash: &str) -> Option<String> {
        match &self.store {
            Store::Memory(cache) => cache
                .lock()
                .expect("unpoisoned")
                .get(hash)
                .map(ToString::to_string),
            Store::Redis(redis) => {
                let mut connection = redis.connection.clone();
                let key = redis.key(&format!("apq:{hash}"));
                connection
                    .get::<_, Option<String>>(key)
                    .await
                    .inspect_err(|error| tracing::warn!(%error, "reading a persisted query failed"))
                    .ok()
                    .flatten()
            }
        }
    }

    async fn put(&self, hash: String, query: &str) {
        match &self.store {
            Store::Memory(cache) => {
                cache.lock().expect("unpoisoned").put(hash, query.into());
            }
            Store::Redis(redis) => {
                let mut connection = redis.connection.clone();
                let key = redis.key(&format!("apq:{hash}"));
                if let Err(error) = connection
                    .set_ex::<_, _, ()>(key, query, self.ttl_secs)
                    .await
                {
                    tracing::warn!(%error, "storing a persisted query failed");
                }
            }
        }
    }
}

/// The hash of `{ "version": 1, "sha256Hash": "<64 hex digits>" }`.
fn parse_extension(value: &async_graphql::Value) -> Result<String, PersistedQueryError> {
    let async_graphql::Value::Object(fields) = value else {
        return Err(PersistedQueryError::Malformed("must be an object"));
    };
    match fields.get("version") {
        Some(async_graphql::Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => return Err(PersistedQueryError::Malformed("needs `version: 1`")),
    }
    match fields.get("sha256Hash") {
        Some(async_graphql::Value::String(hash))
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(hash.to_ascii_lowercase())
        }
        _ => Err(PersistedQueryError::Malformed(
            "needs `sha256Hash`, 64 hex digits",
        )),
    }
}

/// Reads an Apollo persisted-query manifest, checking every id against its body.
fn load_manifest(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the allow-list {}", path.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a persisted-query manifest", path.display()))?;
    anyhow::ensure!(
        manifest.format == "apollo-persisted-query-manifest",
        "{}: `format` must be `apollo-persisted-query-manifest`",
        path.display()
    );
    manifest
        .operations
        .into_iter()
        .map(|operation| {
            anyhow::ensure!(
                sha256_hex(&operation.body) == operation.id.to_ascii_lowercase(),
                "{}: operation {} does not hash to its id",
                path.display(),
                operation.id
            );
            Ok((operation.id.to_ascii_lowercase(), operation.body))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with_hash(query: &str, hash: &str) -> Request {
        let mut request = Request::new(query);
        request.extensions.insert(
            "persistedQuery".into(),
            async_graphql::Value::from_json(serde_json::json!({
                "version": 1, "sha256Hash": hash
            }))
            .unwrap(),
        );
        request
    }

    #[tokio::test]
    async fn a_hash_is_unknown_until_sent_with_its_document() {
        let store = PersistedQueries::new(&PersistedQuerySettings::default(), None).unwrap();
        let query = "{ __typename }";
        let hash = sha256_hex(query);
        let mut by_hash = request_with_hash("", &hash);
        assert_eq!(
            store.resolve(&mut by_hash).await,
            Err(PersistedQueryError::NotFound)
        );
        let registration = store
            .resolve(&mut request_with_hash(query, &hash))
            .await
            .unwrap()
            .expect("a document with its hash registers");
        assert_eq!(
            store.resolve(&mut by_hash).await,
            Err(PersistedQueryError::NotFound),
            "stored only once its request has run"
        );
        store.register(registration).await;
        store.resolve(&mut by_hash).await.unwrap();
        assert_eq!(by_hash.query, query);
    }

    #[tokio::test]
    async fn a_document_that_does_not_match_its_hash_is_not_stored() {
        let store = PersistedQueries::new(&PersistedQuerySettings::default(), None).unwrap();
        let hash = sha256_hex("{ __typename }");
        let mut forged = request_with_hash("mutation { logout }", &hash);
        assert_eq!(
            store.resolve(&mut forged).await,
            Err(PersistedQueryError::HashMismatch)
        );
        assert_eq!(
            store.resolve(&mut request_with_hash("", &hash)).await,
            Err(PersistedQueryError::NotFound)
        );
    }
}
