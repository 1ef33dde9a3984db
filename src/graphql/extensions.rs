//! Gives every error a stable `extensions.code`, including the ones async-graphql raises.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use async_graphql::{
    Request, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
    async_trait::async_trait,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery,
        NextPrepareRequest, NextRequest, NextSubscribe, NextValidation,
    },
    futures_util::stream::BoxStream,
    parser::types::{DocumentOperations, ExecutableDocument, OperationType},
};
use futures_util::StreamExt;

use crate::{
    error::code,
    metrics::{GaugeGuard, METRICS},
};

/// Sets `GRAPHQL_PARSE_FAILED` and `GRAPHQL_VALIDATION_FAILED`, and `BAD_USER_INPUT` on
/// execution errors that have no code (such as a variable of the wrong type).
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

/// An error with `extensions.code` set to `code`.
pub fn coded_error(message: impl Into<String>, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
}

/// The longest error message sent: messages quote what the client sent (a value of the wrong
/// type, an unknown name), and a megabyte of input must not come back as a megabyte of error.
const MAX_MESSAGE_CHARS: usize = 300;

/// Cuts `error`'s message to `MAX_MESSAGE_CHARS`, marked with `…`.
pub fn cut_message(error: &mut ServerError) {
    if let Some((end, _)) = error.message.char_indices().nth(MAX_MESSAGE_CHARS) {
        error.message.truncate(end);
        error.message.push('…');
    }
}

/// Adds `code` to `error` unless it has one.
pub fn ensure_code(error: &mut ServerError, code: &str) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", Value::from(code));
    }
}

#[async_trait]
impl Extension for ErrorCodes {
    /// Request-level hooks only: fields resolve without passing through this extension.
    fn hooks_resolve(&self) -> bool {
        false
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await.map_err(|mut error| {
            ensure_code(&mut error, code::GRAPHQL_PARSE_FAILED);
            cut_message(&mut error);
            error
        })?;
        super::text_input::check(&document, variables)?;
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for error in &mut errors {
                ensure_code(error, code::GRAPHQL_VALIDATION_FAILED);
                cut_message(error);
            }
            errors
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        for error in &mut response.errors {
            ensure_code(error, code::BAD_USER_INPUT);
            cut_message(error);
        }
        response
    }
}

/// Counts and times GraphQL operations by name and type, counts errors by code, and keeps the
/// gauge of operations streaming over WebSockets. Queries and mutations sent over a WebSocket
/// are in that gauge while they run, but not in the operation counts.
pub struct Observe;

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObservedRequest {
            operation: Mutex::new(None),
        })
    }
}

struct ObservedRequest {
    /// The operation's metric labels: name and type.
    operation: Mutex<Option<(String, &'static str)>>,
}

impl ObservedRequest {
    fn labels(&self) -> (String, &'static str) {
        self.operation
            .lock()
            .expect("unpoisoned")
            .clone()
            .unwrap_or_else(|| ("unknown".into(), "unknown"))
    }
}

/// The name and type of the operation `document` runs for `name`; `None` when there is no
/// such operation (execution reports that).
pub fn operation_of<'a>(
    document: &'a ExecutableDocument,
    name: Option<&'a str>,
) -> Option<(Option<&'a str>, OperationType)> {
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), name) => Some((name, operation.node.ty)),
        (DocumentOperations::Multiple(operations), Some(name)) => operations
            .get(name)
            .map(|operation| (Some(name), operation.node.ty)),
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations
            .iter()
            .next()
            .map(|(name, operation)| (Some(name.as_str()), operation.node.ty)),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

#[async_trait]
impl Extension for ObservedRequest {
    /// Request-level hooks only: fields resolve without passing through this extension.
    fn hooks_resolve(&self) -> bool {
        false
    }

    /// No `execute` hook either: executions, and each item of a subscription, skip it.
    fn hooks_execute(&self) -> bool {
        false
    }

    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = Instant::now();
        let response = next.run(ctx).await;
        let (name, kind) = self.labels();
        METRICS
            .graphql_operations
            .with_label_values(&[name.as_str(), kind])
            .inc();
        METRICS
            .graphql_duration
            .with_label_values(&[name.as_str(), kind])
            .observe(started.elapsed().as_secs_f64());
        for error in &response.errors {
            let code = match error.extensions.as_ref().and_then(|e| e.get("code")) {
                Some(Value::String(code)) => code.as_str(),
                _ => "NONE",
            };
            METRICS.graphql_errors.with_label_values(&[code]).inc();
        }
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let requested_name = request.operation_name.clone();
        if let Ok(document) = request.parsed_query()
            && let Some((name, ty)) = operation_of(document, requested_name.as_deref())
        {
            let kind = match ty {
                OperationType::Query => "query",
                OperationType::Mutation => "mutation",
                OperationType::Subscription => "subscription",
            };
            let label = METRICS.operation_label(name);
            if ty == OperationType::Subscription {
                // Streams pass no `request` hook; they are counted as they start.
                METRICS
                    .graphql_operations
                    .with_label_values(&[label.as_str(), kind])
                    .inc();
            }
            *self.operation.lock().expect("unpoisoned") = Some((label, kind));
        }
        next.run(ctx, request).await
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let running = GaugeGuard::hold(&METRICS.active_subscriptions);
        Box::pin(next.run(ctx, stream).map(move |response| {
            let _running = &running;
            response
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_graphql::{EmptyMutation, Object, Schema, Subscription};
    use futures_util::{Stream, stream};

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn answer(&self) -> i32 {
            42
        }
    }

    struct Ticks;

    #[Subscription]
    impl Ticks {
        /// 1, 2, 3.
        async fn ticks(&self) -> impl Stream<Item = Tick> {
            stream::iter([1, 2, 3].map(Tick))
        }
    }

    struct Tick(i32);

    #[Object]
    impl Tick {
        async fn n(&self) -> i32 {
            self.0
        }

        /// Fails without a code, as a resolver's bug would.
        async fn broken(&self) -> async_graphql::Result<Option<i32>> {
            Err("no such tick".into())
        }
    }

    /// Counts the executions that pass through it; says whether it hooks `execute`.
    struct Counting {
        hooks: bool,
        seen: Arc<AtomicUsize>,
    }

    impl ExtensionFactory for Counting {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(Counting {
                hooks: self.hooks,
                seen: self.seen.clone(),
            })
        }
    }

    #[async_trait]
    impl Extension for Counting {
        fn hooks_execute(&self) -> bool {
            self.hooks
        }

        async fn execute(
            &self,
            ctx: &ExtensionContext<'_>,
            operation_name: Option<&str>,
            next: NextExecute<'_>,
        ) -> Response {
            self.seen.fetch_add(1, Ordering::SeqCst);
            next.run(ctx, operation_name).await
        }
    }

    fn schema(hooks: bool, seen: &Arc<AtomicUsize>) -> Schema<Query, EmptyMutation, Ticks> {
        Schema::build(Query, EmptyMutation, Ticks)
            .extension(ErrorCodes)
            .extension(Counting {
                hooks,
                seen: seen.clone(),
            })
            .finish()
    }

    /// An extension that does not hook `execute` is left out of executions, a subscription's
    /// items included, and answers are as before; one that does sees each of them; the error
    /// codes still reach a subscription item's errors.
    #[tokio::test]
    async fn executions_pass_only_through_extensions_that_hook_them() {
        for hooks in [true, false] {
            let seen = Arc::new(AtomicUsize::new(0));
            let schema = schema(hooks, &seen);
            let answer = schema.execute("{ answer }").await;
            assert!(answer.errors.is_empty(), "{:?}", answer.errors);
            assert_eq!(
                answer.data.into_json().unwrap(),
                serde_json::json!({"answer": 42})
            );
            let items: Vec<Response> = schema
                .execute_stream("subscription { ticks { n broken } }")
                .collect()
                .await;
            assert_eq!(items.len(), 3);
            for (n, item) in (1..).zip(&items) {
                assert_eq!(
                    item.data.clone().into_json().unwrap(),
                    serde_json::json!({"ticks": {"n": n, "broken": null}})
                );
                let [error] = item.errors.as_slice() else {
                    panic!("one error per item: {:?}", item.errors);
                };
                assert_eq!(
                    error
                        .extensions
                        .as_ref()
                        .and_then(|e| e.get("code"))
                        .cloned(),
                    Some(Value::from(code::BAD_USER_INPUT)),
                    "{error:?}"
                );
            }
            let expected = if hooks { 1 + 3 } else { 0 };
            assert_eq!(
                seen.load(Ordering::SeqCst),
                expected,
                "hooks_execute {hooks}"
            );
        }
    }
}
