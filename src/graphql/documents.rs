//! Documents kept parsed and validated by their text, so that an operation a client sends again
//! (nearly every operation of an app, and every persisted one) goes straight to execution.
//!
//! Two caches, both bounded in entries and in the size of what they keep:
//! - parsed: the document text and operation name to the parsed document, which passed
//!   `limits`' checks of the text and the document (size, tokens, aliases, directives,
//!   fragments, depth) and names an operation of the document. Those checks read nothing else.
//! - validated: the same with the variables (as JSON) to async-graphql's validation result
//!   (complexity and depth), since a connection's cost reads `first`/`last`, which may be
//!   variables. Only a document that passed validation is kept; a failing one is validated,
//!   and refused, every time.
//!
//! Nothing here depends on who asks: the checks and validation read only the text, the
//! variables and the schema, and the rate limit and admission still charge every request.

use std::{num::NonZeroUsize, sync::Mutex};

use async_graphql::{
    Request, ValidationResult,
    parser::types::{ExecutableDocument, OperationType},
};
use lru::LruCache;

/// Documents kept, and validation results kept.
const ENTRIES: usize = 256;
/// Longer documents are not kept: an app's operations are a few hundred bytes to a few KB, and
/// the bound limits what hostile documents can make the cache hold.
const MAX_TEXT: usize = 4 * 1024;
/// Validation results are not kept for longer variables (they would be one-offs anyway).
const MAX_VARIABLES: usize = 1024;

/// A document that passed the checks, as parsed.
#[derive(Clone)]
pub struct Parsed {
    pub document: ExecutableDocument,
    /// The kind of operation it runs.
    pub operation: Option<OperationType>,
}

/// Which request a cached entry answers.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DocumentKey {
    query: String,
    operation_name: Option<String>,
}

impl DocumentKey {
    /// The key of `request`'s document, if it is short enough to keep.
    pub fn of(request: &Request) -> Option<Self> {
        (request.query.len() <= MAX_TEXT).then(|| Self {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
        })
    }

    /// The key of `request`'s validation: this document with these variables.
    pub fn with_variables(&self, request: &Request) -> Option<ValidationKey> {
        let variables = serde_json::to_string(&request.variables).ok()?;
        (variables.len() <= MAX_VARIABLES).then(|| ValidationKey {
            document: self.clone(),
            variables,
        })
    }
}

/// A document with its variables.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ValidationKey {
    document: DocumentKey,
    variables: String,
}

/// The two caches, shared by every request of a schema.
pub struct Documents {
    parsed: Mutex<LruCache<DocumentKey, Parsed>>,
    validated: Mutex<LruCache<ValidationKey, ValidationResult>>,
}

impl Default for Documents {
    fn default() -> Self {
        let entries = NonZeroUsize::new(ENTRIES).expect("not zero");
        Self {
            parsed: Mutex::new(LruCache::new(entries)),
            validated: Mutex::new(LruCache::new(entries)),
        }
    }
}

impl Documents {
    /// The parsed document of `key`, if kept.
    pub fn parsed(&self, key: &DocumentKey) -> Option<Parsed> {
        self.parsed.lock().expect("unpoisoned").get(key).cloned()
    }

    /// The kind of operation `key` runs, if its document is kept (without copying it).
    pub fn operation(&self, key: &DocumentKey) -> Option<Option<OperationType>> {
        self.parsed
            .lock()
            .expect("unpoisoned")
            .get(key)
            .map(|parsed| parsed.operation)
    }

    /// Keeps `parsed` for `key`: it passed every check of the text and the document.
    pub fn keep_parsed(&self, key: DocumentKey, parsed: Parsed) {
        self.parsed.lock().expect("unpoisoned").put(key, parsed);
    }

    /// The validation result of `key`, if kept.
    pub fn validated(&self, key: &ValidationKey) -> Option<ValidationResult> {
        self.validated.lock().expect("unpoisoned").get(key).copied()
    }

    /// Keeps the result of a validation that passed.
    pub fn keep_validated(&self, key: ValidationKey, result: ValidationResult) {
        self.validated.lock().expect("unpoisoned").put(key, result);
    }
}
