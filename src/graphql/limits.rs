//! Refuses documents that would cost too much before they run: size in bytes and tokens,
//! aliases, directives, fragment cycles and fragment blow-up, depth and complexity; then charges
//! the request's cost to the caller's rate-limit budget.
//!
//! Everything here runs before execution, for HTTP and WebSocket alike. Fragment cycles are
//! caught before async-graphql's own validation, whose complexity pass follows fragment spreads
//! without a guard and would recurse forever on a cycle.

use std::{
    any::{Any, TypeId},
    cell::Cell,
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use async_graphql::{
    Request, Response, ServerError, ServerResult, ValidationResult, Value,
    async_trait::async_trait,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest,
        NextValidation,
    },
    parser::types::{
        DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
    },
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{
    documents::{DocumentKey, Documents, Parsed, ValidationKey},
    extensions::{coded_error, ensure_code, operation_of},
};
use crate::{
    config::QueryLimits,
    error::code,
    persisted::{PersistedQueries, PersistedQueryError},
    ratelimit::{CostReport, RateLimiter, RateSubject},
};

/// The extension factory; one `RequestLimits` is made per request.
pub struct Limits {
    limits: Arc<QueryLimits>,
    limiter: Option<Arc<RateLimiter>>,
    persisted: Option<Arc<PersistedQueries>>,
    admission: Option<Arc<Admission>>,
    documents: Arc<Documents>,
}

/// Admits operations by cost: the queries and mutations executing at once may cost at most the
/// budget together, and one that would go over it waits its turn, first come first served. The
/// memory an operation holds while it runs grows with its cost, so this bounds memory under
/// load where a count of requests would not: a few large pages take the room of many small ones.
///
/// The budget is shared out between the HTTP workers. Each worker is one thread that runs the
/// operations of its own connections, so one queue for all could give the whole budget to one
/// worker's operations and leave the other workers' cores idle while their operations wait.
/// Each worker admits from its own share (the budget divided evenly between the workers) and
/// the whole budget still bounds them together: an operation costing more than a share takes
/// all of its worker's share (it runs alone there) and its cost of the whole budget (all of it
/// at most), so what executes at once costs at most the budget or the largest single
/// operation.
///
/// The HTTP layer admits requests by count the same way (each costs 1 of
/// `max_concurrent_requests`).
pub struct Admission {
    whole: Arc<Semaphore>,
    budget: u32,
    /// Each worker's share, and its size.
    shares: Vec<(Arc<Semaphore>, u32)>,
}

/// The next share to give a thread that admits operations.
static NEXT_SHARE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The share this thread's operations are admitted from, given on its first operation or
    /// by [`claim_admission_share`].
    static SHARE: Cell<Option<usize>> = const { Cell::new(None) };
}

/// Gives this thread its own admission share, in turn with the other threads that call it: the
/// HTTP server calls it on each worker as it starts, so the workers get one share each (a thread
/// that never calls it gets the next share on its first operation).
pub fn claim_admission_share() {
    SHARE.with(|share| share.set(Some(NEXT_SHARE.fetch_add(1, Ordering::Relaxed))));
}

/// An operation's room in the budget, given back when dropped.
pub struct Admitted {
    _share: OwnedSemaphorePermit,
    _whole: OwnedSemaphorePermit,
}

impl Admission {
    /// A budget of `budget` points at once, shared out between `workers` threads; `None` for a
    /// budget of 0 (no limit).
    pub fn new(budget: usize, workers: usize) -> Option<Self> {
        let budget = u32::try_from(budget)
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32);
        if budget == 0 {
            return None;
        }
        // At least one point each; what does not divide evenly goes to the first shares.
        let workers = u32::try_from(workers).unwrap_or(u32::MAX).clamp(1, budget);
        let shares = (0..workers)
            .map(|worker| {
                let size = budget / workers + u32::from(worker < budget % workers);
                (Arc::new(Semaphore::new(size as usize)), size)
            })
            .collect();
        Some(Self {
            whole: Arc::new(Semaphore::new(budget as usize)),
            budget,
            shares,
        })
    }

    /// Waits until an operation costing `cost` fits in this thread's share and in the whole
    /// budget, and holds its room until the permit is dropped. An operation costing more than
    /// all of them waits for all of them and runs alone, so every operation the complexity
    /// limit lets through runs eventually.
    pub async fn admit(&self, cost: usize) -> Admitted {
        let share = SHARE.with(|share| {
            share.get().unwrap_or_else(|| {
                claim_admission_share();
                share.get().expect("just claimed")
            })
        });
        self.admit_from(share % self.shares.len(), cost).await
    }

    async fn admit_from(&self, share: usize, cost: usize) -> Admitted {
        let points = u32::try_from(cost).unwrap_or(u32::MAX).max(1);
        // Always the share first, then the whole: nothing waits for a share while holding part of
        // the whole budget.
        let (room, size) = &self.shares[share];
        let share = room
            .clone()
            .acquire_many_owned(points.min(*size))
            .await
            .expect("the semaphore is never closed");
        let whole = self
            .whole
            .clone()
            .acquire_many_owned(points.min(self.budget))
            .await
            .expect("the semaphore is never closed");
        Admitted {
            _share: share,
            _whole: whole,
        }
    }
}

impl Limits {
    /// Enforces `limits` and, in allow-list mode, `persisted`'s list (over every transport),
    /// and charges `limiter` when there is one; the cost budget is shared out between
    /// `workers` HTTP workers.
    pub fn new(
        limits: QueryLimits,
        limiter: Option<Arc<RateLimiter>>,
        persisted: Option<Arc<PersistedQueries>>,
        workers: usize,
        documents: Arc<Documents>,
    ) -> Self {
        Self {
            admission: Admission::new(limits.max_concurrent_cost, workers).map(Arc::new),
            limits: Arc::new(limits),
            limiter,
            persisted,
            documents,
        }
    }
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(RequestLimits {
            limits: self.limits.clone(),
            limiter: self.limiter.clone(),
            persisted: self.persisted.clone(),
            report: Mutex::new(None),
            admission: self.admission.clone(),
            subscription: AtomicBool::new(false),
            admitted: Mutex::new(None),
            documents: self.documents.clone(),
            validation_key: Mutex::new(None),
        })
    }
}

/// Where the HTTP layer collects the cost of every operation of a request, to answer with
/// `RateLimit-*` headers. Put one in the request data.
#[derive(Debug, Clone, Default)]
pub struct CostLedger(pub Arc<Mutex<Vec<CostReport>>>);

struct RequestLimits {
    limits: Arc<QueryLimits>,
    limiter: Option<Arc<RateLimiter>>,
    persisted: Option<Arc<PersistedQueries>>,
    report: Mutex<Option<CostReport>>,
    admission: Option<Arc<Admission>>,
    /// The operation is a subscription: it is not admitted by cost, since it holds nothing
    /// between events and would hold its room for as long as it stays open.
    subscription: AtomicBool,
    /// The room this operation holds while it executes.
    admitted: Mutex<Option<Admitted>>,
    /// Documents already parsed, checked and validated.
    documents: Arc<Documents>,
    /// Where this request's validation result is kept, when it may be.
    validation_key: Mutex<Option<ValidationKey>>,
}

/// A `QUERY_TOO_COMPLEX` refusal naming the limit it hit.
fn too_complex(message: String, limit: &str, max: usize) -> ServerError {
    let mut error = coded_error(message, code::QUERY_TOO_COMPLEX);
    let extensions = error.extensions.get_or_insert_with(Default::default);
    extensions.set("limit", limit);
    extensions.set("max", max as u64);
    error
}

impl RequestLimits {
    /// Charges `cost` to `subject`'s budget (once per request); `Err` when it is spent.
    async fn charge(
        &self,
        subject: Option<&RateSubject>,
        ledger: Option<&CostLedger>,
        cost: usize,
    ) -> ServerResult<()> {
        let (Some(limiter), Some(subject)) = (&self.limiter, subject) else {
            return Ok(());
        };
        if self.report.lock().expect("unpoisoned").is_some() {
            return Ok(());
        }
        let report = limiter.charge(subject, cost as u64).await;
        if let Some(ledger) = ledger {
            ledger.0.lock().expect("unpoisoned").push(report.clone());
        }
        *self.report.lock().expect("unpoisoned") = Some(report.clone());
        if report.allowed {
            return Ok(());
        }
        let mut error = coded_error(
            format!(
                "rate limit exceeded: this request costs {} points and {} of {} are left; \
                 retry in {} s",
                report.cost, report.remaining, report.limit, report.reset_secs
            ),
            code::RATE_LIMITED,
        );
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("retryAfter", report.reset_secs);
        Err(error)
    }
}

/// `T` from the request's own data, else from the connection's or the schema's.
fn request_data<'a, T: Any + Send + Sync>(
    request: &'a Request,
    ctx: &ExtensionContext<'a>,
) -> Option<&'a T> {
    request
        .data
        .get(&TypeId::of::<T>())
        .and_then(|data| data.downcast_ref::<T>())
        .or_else(|| ctx.data_opt::<T>())
}

/// The longest `operationName` accepted: GraphQL names in real documents are short, and a
/// name is echoed in errors and kept as a metrics label.
pub const MAX_OPERATION_NAME_BYTES: usize = 256;

/// A request error (`BAD_REQUEST`) for an over-long `operationName`.
fn check_operation_name(name: Option<&str>) -> ServerResult<()> {
    match name {
        Some(name) if name.len() > MAX_OPERATION_NAME_BYTES => Err(coded_error(
            format!("`operationName` is longer than {MAX_OPERATION_NAME_BYTES} bytes"),
            code::BAD_REQUEST,
        )),
        _ => Ok(()),
    }
}

/// The spec's `GetOperation`: the operation named `name`, or the only one when no name is
/// given; otherwise a request error (`BAD_REQUEST`) that echoes at most a short prefix of the
/// name.
fn select_operation(document: &ExecutableDocument, name: Option<&str>) -> ServerResult<()> {
    let found = match (&document.operations, name) {
        (DocumentOperations::Single(_), None) => true,
        (DocumentOperations::Single(_), Some(_)) => false,
        (DocumentOperations::Multiple(operations), Some(name)) => operations.contains_key(name),
        (DocumentOperations::Multiple(operations), None) => {
            if operations.len() > 1 {
                return Err(coded_error(
                    "the document has several operations: name the one to run in `operationName`",
                    code::BAD_REQUEST,
                ));
            }
            true
        }
    };
    if found {
        Ok(())
    } else {
        Err(coded_error(
            format!(
                "the document has no operation named `{}`",
                crate::graphql::relay::cut(name.unwrap_or_default())
            ),
            code::BAD_REQUEST,
        ))
    }
}

/// The checks that need only the text: size in bytes, then in tokens. Cheap whatever the
/// input, so they run before the parser sees it.
pub fn check_text(limits: &QueryLimits, query: &str) -> ServerResult<()> {
    if query.len() > limits.max_document_bytes {
        return Err(too_complex(
            format!(
                "the document is {} bytes, over the limit of {}",
                query.len(),
                limits.max_document_bytes
            ),
            "maxDocumentBytes",
            limits.max_document_bytes,
        ));
    }
    if count_tokens(query, limits.max_tokens) > limits.max_tokens {
        return Err(too_complex(
            format!("the document has more than {} tokens", limits.max_tokens),
            "maxTokens",
            limits.max_tokens,
        ));
    }
    Ok(())
}

/// The checks on the parsed document, before anything walks it with its fragments spread:
/// aliases, directives, fragment cycles, then depth and field count with fragments spread,
/// each fragment measured once.
fn check_document(limits: &QueryLimits, document: &ExecutableDocument) -> ServerResult<()> {
    let mut census = Census::default();
    for (_, operation) in document.operations.iter() {
        census.directives(operation.node.directives.len());
        census.selection_set(&operation.node.selection_set.node);
    }
    for fragment in document.fragments.values() {
        census.directives(fragment.node.directives.len());
        census.selection_set(&fragment.node.selection_set.node);
    }
    if census.aliases > limits.max_aliases {
        return Err(too_complex(
            format!(
                "the document has {} aliases, over the limit of {}",
                census.aliases, limits.max_aliases
            ),
            "maxAliases",
            limits.max_aliases,
        ));
    }
    if census.most_directives > limits.max_directives {
        return Err(too_complex(
            format!(
                "a field carries {} directives, over the limit of {}",
                census.most_directives, limits.max_directives
            ),
            "maxDirectives",
            limits.max_directives,
        ));
    }
    let mut expansion = Expansion {
        document,
        sizes: HashMap::new(),
        path: Vec::new(),
    };
    for name in document.fragments.keys() {
        expansion.fragment(name.as_str())?;
    }
    let mut whole = Size::default();
    for (_, operation) in document.operations.iter() {
        let size = expansion.selection_set(&operation.node.selection_set.node)?;
        whole.fields = whole.fields.saturating_add(size.fields);
        whole.depth = whole.depth.max(size.depth);
    }
    if whole.depth > limits.max_depth {
        return Err(too_complex(
            format!(
                "the query is nested {} levels deep, over the limit of {}",
                whole.depth, limits.max_depth
            ),
            "maxDepth",
            limits.max_depth,
        ));
    }
    if whole.fields > limits.max_complexity {
        return Err(too_complex(
            format!(
                "the document selects more than {} fields once its fragments are spread",
                limits.max_complexity
            ),
            "maxComplexity",
            limits.max_complexity,
        ));
    }
    Ok(())
}

#[async_trait]
impl Extension for RequestLimits {
    /// Request-level hooks only: fields resolve without passing through this extension.
    fn hooks_resolve(&self) -> bool {
        false
    }

    /// No `execute` hook either: executions, and each item of a subscription, skip it.
    fn hooks_execute(&self) -> bool {
        false
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        // Done executing: the room goes to the next operation before the answer is serialized.
        drop(self.admitted.lock().expect("unpoisoned").take());
        let report = self.report.lock().expect("unpoisoned").take();
        if let Some(report) = report {
            response.extensions.insert("cost".into(), report.to_value());
        }
        response
    }

    /// Checks the document before async-graphql parses and walks it: its own walk (the
    /// recursion-depth check) follows fragment spreads, which a few kilobytes of fragments can
    /// turn into billions of steps. The parsed document is handed on, so nothing parses twice.
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let limits = &self.limits;
        let listed = self
            .persisted
            .as_ref()
            .is_none_or(|persisted| persisted.allows(&request.query));
        if !listed {
            let error = PersistedQueryError::NotInList;
            return Err(coded_error(error.message(), error.code()));
        }
        let key = DocumentKey::of(&request);
        if let Some(key) = &key
            && let Some(parsed) = self.documents.parsed(key)
        {
            // The same text and operation passed every check below before.
            if parsed.operation == Some(OperationType::Subscription) {
                self.subscription.store(true, Ordering::Relaxed);
            }
            *self.validation_key.lock().expect("unpoisoned") = key.with_variables(&request);
            request.set_parsed_query(parsed.document);
            return next.run(ctx, request).await;
        }
        let operation_name = request.operation_name.clone();
        let mut operation = None;
        let checked = check_operation_name(operation_name.as_deref())
            .and_then(|()| check_text(limits, &request.query))
            .and_then(|()| {
                let document = request.parsed_query().map_err(|mut error| {
                    ensure_code(&mut error, code::GRAPHQL_PARSE_FAILED);
                    error
                })?;
                select_operation(document, operation_name.as_deref())?;
                operation = operation_of(document, operation_name.as_deref()).map(|(_, kind)| kind);
                if operation == Some(OperationType::Subscription) {
                    self.subscription.store(true, Ordering::Relaxed);
                }
                check_document(limits, document)
            });
        if let Err(error) = checked {
            // A refused document still costs a point, so refusals cannot be sent for free.
            self.charge(
                request_data::<RateSubject>(&request, ctx),
                request_data::<CostLedger>(&request, ctx),
                1,
            )
            .await?;
            return Err(error);
        }
        if let Some(key) = key
            && let Ok(document) = request.parsed_query()
        {
            let parsed = Parsed {
                document: document.clone(),
                operation,
            };
            *self.validation_key.lock().expect("unpoisoned") = key.with_variables(&request);
            self.documents.keep_parsed(key, parsed);
        }
        next.run(ctx, request).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let limits = &self.limits;
        let subject = ctx.data_opt::<RateSubject>();
        let ledger = ctx.data_opt::<CostLedger>();
        let key = self.validation_key.lock().expect("unpoisoned").take();
        let kept = key.as_ref().and_then(|key| self.documents.validated(key));
        let validated = match kept {
            Some(result) => Ok(result),
            None => next.run(ctx).await,
        };
        let result = match validated {
            Ok(result) => {
                if let Some(key) = key {
                    self.documents.keep_validated(key, result);
                }
                result
            }
            Err(errors) => {
                self.charge(subject, ledger, 1)
                    .await
                    .map_err(|error| vec![error])?;
                return Err(errors);
            }
        };
        if result.complexity > limits.max_complexity {
            self.charge(subject, ledger, 1)
                .await
                .map_err(|error| vec![error])?;
            return Err(vec![too_complex(
                format!(
                    "the query's complexity is {}, over the limit of {} (a connection counts \
                     its page size, and a menu's lists their estimated length, times its \
                     selection)",
                    result.complexity, limits.max_complexity
                ),
                "maxComplexity",
                limits.max_complexity,
            )]);
        }
        self.charge(subject, ledger, result.complexity.max(1))
            .await
            .map_err(|error| vec![error])?;
        if let Some(admission) = &self.admission
            && !self.subscription.load(Ordering::Relaxed)
        {
            let admitted = admission.admit(result.complexity).await;
            *self.admitted.lock().expect("unpoisoned") = Some(admitted);
        }
        Ok(result)
    }
}

/// Aliases and directives, counted over the document as written.
#[derive(Default)]
struct Census {
    aliases: usize,
    most_directives: usize,
}

impl Census {
    fn directives(&mut self, count: usize) {
        self.most_directives = self.most_directives.max(count);
    }

    fn selection_set(&mut self, set: &SelectionSet) {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    if field.node.alias.is_some() {
                        self.aliases += 1;
                    }
                    self.directives(field.node.directives.len());
                    self.selection_set(&field.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    self.directives(spread.node.directives.len());
                }
                Selection::InlineFragment(fragment) => {
                    self.directives(fragment.node.directives.len());
                    self.selection_set(&fragment.node.selection_set.node);
                }
            }
        }
    }
}

/// How many selections (fields, spreads, inline fragments) a selection set holds and how deeply
/// its fields nest, fragments spread.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    fields: usize,
    depth: usize,
}

/// Sizes with every fragment spread in place, computed once per fragment, so that fragments
/// spreading each other many times are measured without being expanded.
struct Expansion<'a> {
    document: &'a ExecutableDocument,
    sizes: HashMap<&'a str, Size>,
    /// Fragments being expanded, to report a cycle.
    path: Vec<&'a str>,
}

impl<'a> Expansion<'a> {
    fn fragment(&mut self, name: &'a str) -> ServerResult<Size> {
        if let Some(size) = self.sizes.get(name) {
            return Ok(*size);
        }
        if let Some(start) = self.path.iter().position(|entered| *entered == name) {
            let mut cycle = self.path[start..].to_vec();
            cycle.push(name);
            return Err(coded_error(
                format!(
                    "fragment `{name}` spreads itself ({}); fragments must not form cycles",
                    cycle.join(" -> ")
                ),
                code::GRAPHQL_VALIDATION_FAILED,
            ));
        }
        let Some(fragment) = self.document.fragments.get(name) else {
            // Refused here rather than left to validation: async-graphql's own walks run
            // before validation and would count on this measure being complete.
            return Err(coded_error(
                format!("unknown fragment `{name}`"),
                code::GRAPHQL_VALIDATION_FAILED,
            ));
        };
        self.path.push(name);
        let size = self.selection_set(&fragment.node.selection_set.node);
        self.path.pop();
        let size = size?;
        self.sizes.insert(name, size);
        Ok(size)
    }

    fn selection_set(&mut self, set: &'a SelectionSet) -> ServerResult<Size> {
        let mut size = Size::default();
        for selection in &set.items {
            let more = match &selection.node {
                Selection::Field(field) => {
                    let children = self.selection_set(&field.node.selection_set.node)?;
                    Size {
                        fields: children.fields.saturating_add(1),
                        depth: children.depth + 1,
                    }
                }
                // A spread or an inline fragment is a step of every walk too, so it counts
                // as one: a tree of spreads measures as large as the walks it causes.
                Selection::FragmentSpread(spread) => {
                    let spread = self.fragment(spread.node.fragment_name.node.as_str())?;
                    Size {
                        fields: spread.fields.saturating_add(1),
                        depth: spread.depth,
                    }
                }
                Selection::InlineFragment(fragment) => {
                    let inline = self.selection_set(&fragment.node.selection_set.node)?;
                    Size {
                        fields: inline.fields.saturating_add(1),
                        depth: inline.depth,
                    }
                }
            };
            size.fields = size.fields.saturating_add(more.fields);
            size.depth = size.depth.max(more.depth);
        }
        Ok(size)
    }
}

/// The number of lexical tokens in `source`, counting no further than just past `stop_after`.
/// Follows the GraphQL lexer closely enough to count: whitespace, commas and comments are
/// ignored, and a string (block strings included) or a number is one token.
pub fn count_tokens(source: &str, stop_after: usize) -> usize {
    let bytes = source.as_bytes();
    let mut count = 0;
    let mut i = 0;
    while i < bytes.len() && count <= stop_after {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                count += 1;
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 3;
            }
            b'"' => {
                count += 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                count += 1;
                i += 3;
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                count += 1;
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
            }
            b if b.is_ascii_digit() || b == b'-' => {
                count += 1;
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_digit() || b".eE+-".contains(&bytes[i]))
                {
                    i += 1;
                }
            }
            _ => {
                count += 1;
                i += source[i..].chars().next().map_or(1, char::len_utf8);
            }
        }
    }
    count
}

impl CostReport {
    /// The report as `extensions.cost`.
    pub fn to_value(&self) -> Value {
        let mut cost = async_graphql::indexmap::IndexMap::new();
        cost.insert(
            async_graphql::Name::new("requested"),
            Value::from(self.cost),
        );
        cost.insert(async_graphql::Name::new("limit"), Value::from(self.limit));
        cost.insert(
            async_graphql::Name::new("remaining"),
            Value::from(self.remaining),
        );
        cost.insert(
            async_graphql::Name::new("resetSeconds"),
            Value::from(self.reset_secs),
        );
        Value::Object(cost)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use std::sync::Arc;

    use super::{Admission, claim_admission_share, count_tokens};

    #[tokio::test]
    async fn operations_are_admitted_while_their_cost_fits_the_budget() {
        assert!(Admission::new(0, 1).is_none(), "0 means no limit");
        let admission = Admission::new(1_000, 1).unwrap();
        let first = admission.admit(600).await;
        let mut second = Box::pin(admission.admit(600));
        assert!(
            (&mut second).now_or_never().is_none(),
            "600 + 600 is over 1000"
        );
        // First come, first served: a small operation does not overtake the one waiting.
        let mut small = Box::pin(admission.admit(10));
        assert!((&mut small).now_or_never().is_none());
        drop(first);
        let second = (&mut second)
            .now_or_never()
            .expect("room once the first is done");
        let small = (&mut small)
            .now_or_never()
            .expect("and for the small one beside it");
        // One costing more than the whole budget waits for all of it, then runs alone.
        let mut huge = Box::pin(admission.admit(50_000));
        assert!((&mut huge).now_or_never().is_none());
        drop((second, small));
        let huge = (&mut huge).now_or_never().expect("the whole budget, alone");
        assert!(admission.admit(1).now_or_never().is_none());
        drop(huge);
        assert!(admission.admit(0).now_or_never().is_some());
    }

    #[test]
    fn the_shares_add_up_to_the_budget() {
        let sizes = |budget, workers| -> Vec<u32> {
            let admission = Admission::new(budget, workers).unwrap();
            admission.shares.iter().map(|(_, size)| *size).collect()
        };
        assert_eq!(sizes(20_000, 2), [10_000, 10_000]);
        assert_eq!(sizes(16, 3), [6, 5, 5]);
        assert_eq!(sizes(1, 4), [1], "a budget of 1 is one share of 1");
        assert_eq!(sizes(7, 0), [7], "no workers counts as one");
    }

    #[test]
    fn threads_that_claim_a_share_admit_from_different_ones() {
        let admission = Arc::new(Admission::new(2, 2).unwrap());
        // As the HTTP server's workers do when they start; each holds a point of its share.
        // (Shares are given out by a process-wide counter: nextest runs this test in a process
        // of its own, so no other test's thread claims one between these two.)
        let worker = |admission: Arc<Admission>| {
            std::thread::spawn(move || {
                claim_admission_share();
                let held = admission
                    .admit(1)
                    .now_or_never()
                    .expect("this worker's share has room");
                assert!(
                    admission.admit(1).now_or_never().is_none(),
                    "a share of one point is full"
                );
                held
            })
            .join()
            .expect("the worker admits")
        };
        let first = worker(admission.clone());
        let second = worker(admission.clone());
        drop((first, second));
    }

    #[tokio::test]
    async fn each_worker_admits_from_its_own_share_within_the_whole_budget() {
        let admission = Admission::new(1_000, 2).unwrap();
        // A worker's share is full: its next operation waits, the other worker's does not.
        let first = admission.admit_from(0, 400).await;
        let mut second = Box::pin(admission.admit_from(0, 400));
        assert!(
            (&mut second).now_or_never().is_none(),
            "400 + 400 is over worker 0's share of 500"
        );
        let other = admission
            .admit_from(1, 400)
            .now_or_never()
            .expect("worker 1's share is free");
        drop(first);
        let second = (&mut second)
            .now_or_never()
            .expect("room in worker 0's share once its first is done");
        drop((second, other));
        // One costing more than a share runs alone on its worker, and takes its cost of the
        // whole budget: what runs at once stays within the budget.
        let big = admission
            .admit_from(0, 800)
            .now_or_never()
            .expect("all of worker 0's share, 800 of the budget");
        assert!(admission.admit_from(0, 1).now_or_never().is_none());
        let mut beside = Box::pin(admission.admit_from(1, 300));
        assert!(
            (&mut beside).now_or_never().is_none(),
            "800 + 300 is over the budget of 1000"
        );
        let small = admission.admit_from(1, 200).now_or_never();
        assert!(
            small.is_none(),
            "first come, first served in worker 1's share"
        );
        drop(big);
        assert!((&mut beside).now_or_never().is_some());
    }

    #[test]
    fn tokens_are_counted_as_the_graphql_lexer_sees_them() {
        assert_eq!(count_tokens("{ a }", 100), 3);
        assert_eq!(
            count_tokens("query Q($x: Int = -1.5e3) { a(x: $x) }", 100),
            19
        );
        assert_eq!(count_tokens("# comment { { {\n{ a, b }", 100), 4);
        assert_eq!(count_tokens(r#"{ a(s: "x { y } \" z") }"#, 100), 8);
        assert_eq!(
            count_tokens("{ a(s: \"\"\"x { \n y }\"\"\") ...F }", 100),
            10
        );
    }

    #[test]
    fn a_name_does_not_swallow_the_spread_after_it() {
        assert_eq!(count_tokens("{a...F...F}", 100), 7);
        assert_eq!(count_tokens("{ a(n: -12.5e+3) }", 100), 8);
    }

    #[test]
    fn counting_stops_just_past_the_limit() {
        let huge = "{ a }".repeat(1_000_000);
        assert_eq!(count_tokens(&huge, 10), 11);
    }
}
