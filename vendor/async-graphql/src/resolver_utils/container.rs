use std::{future::Future, pin::Pin, sync::Arc};

use futures_util::FutureExt;
use indexmap::IndexMap;

use crate::{
    Context, ContextBase, ContextSelectionSet, Error, Name, OutputType, Positioned, ServerError,
    ServerResult, Value,
    extensions::ResolveInfo,
    parser::types::{Field, Selection},
};

/// Represents a GraphQL container object.
///
/// This helper trait allows the type to call `resolve_container` on itself in
/// its `OutputType::resolve` implementation.
#[cfg_attr(feature = "boxed-trait", async_trait::async_trait)]
pub trait ContainerType: OutputType {
    /// This function returns true of type `EmptyMutation` only.
    #[doc(hidden)]
    fn is_empty() -> bool {
        false
    }

    /// Resolves a field value and outputs it as a json value
    /// `async_graphql::Value`.
    ///
    /// If the field was not found returns None.
    #[cfg(feature = "boxed-trait")]
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>>;

    /// Resolves a field value and outputs it as a json value
    /// `async_graphql::Value`.
    ///
    /// If the field was not found returns None.
    #[cfg(not(feature = "boxed-trait"))]
    fn resolve_field(
        &self,
        ctx: &Context<'_>,
    ) -> impl Future<Output = ServerResult<Option<Value>>> + Send;

    /// Collect all the fields of the container that are queried in the
    /// selection set.
    ///
    /// Objects do not have to override this, but interfaces and unions must
    /// call it on their internal type.
    fn collect_all_fields<'a>(
        &'a self,
        ctx: &ContextSelectionSet<'a>,
        fields: &mut Fields<'a>,
    ) -> ServerResult<()>
    where
        Self: Send + Sync,
    {
        fields.add_set(ctx, self)
    }

    /// Find the GraphQL entity with the given name from the parameter.
    ///
    /// Objects should override this in case they are the query root.
    #[cfg(feature = "boxed-trait")]
    async fn find_entity(&self, _: &Context<'_>, _: &Value) -> ServerResult<Option<Value>> {
        Ok(None)
    }

    /// Find the GraphQL entity with the given name from the parameter.
    ///
    /// Objects should override this in case they are the query root.
    #[cfg(not(feature = "boxed-trait"))]
    fn find_entity(
        &self,
        _: &Context<'_>,
        _params: &Value,
    ) -> impl Future<Output = ServerResult<Option<Value>>> + Send {
        async { Ok(None) }
    }
}

#[cfg_attr(feature = "boxed-trait", async_trait::async_trait)]
impl<T: ContainerType + ?Sized> ContainerType for &T {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        T::resolve_field(*self, ctx).await
    }

    async fn find_entity(&self, ctx: &Context<'_>, params: &Value) -> ServerResult<Option<Value>> {
        T::find_entity(*self, ctx, params).await
    }
}

#[cfg_attr(feature = "boxed-trait", async_trait::async_trait)]
impl<T: ContainerType + ?Sized> ContainerType for Arc<T> {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        T::resolve_field(self, ctx).await
    }

    async fn find_entity(&self, ctx: &Context<'_>, params: &Value) -> ServerResult<Option<Value>> {
        T::find_entity(self, ctx, params).await
    }
}

#[cfg_attr(feature = "boxed-trait", async_trait::async_trait)]
impl<T: ContainerType + ?Sized> ContainerType for Box<T> {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        T::resolve_field(self, ctx).await
    }

    async fn find_entity(&self, ctx: &Context<'_>, params: &Value) -> ServerResult<Option<Value>> {
        T::find_entity(self, ctx, params).await
    }
}

#[cfg_attr(feature = "boxed-trait", async_trait::async_trait)]
impl<T: ContainerType, E: Into<Error> + Send + Sync + Clone> ContainerType for Result<T, E> {
    async fn resolve_field(&self, ctx: &Context<'_>) -> ServerResult<Option<Value>> {
        match self {
            Ok(value) => T::resolve_field(value, ctx).await,
            Err(err) => Err(ctx.set_error_path(err.clone().into().into_server_error(ctx.item.pos))),
        }
    }

    async fn find_entity(&self, ctx: &Context<'_>, params: &Value) -> ServerResult<Option<Value>> {
        match self {
            Ok(value) => T::find_entity(value, ctx, params).await,
            Err(err) => Err(ctx.set_error_path(err.clone().into().into_server_error(ctx.item.pos))),
        }
    }
}

/// Resolve an container by executing each of the fields concurrently.
pub async fn resolve_container<'a, T: ContainerType + ?Sized>(
    ctx: &ContextSelectionSet<'a>,
    root: &'a T,
) -> ServerResult<Value> {
    resolve_container_inner(ctx, root, true).await
}

/// Resolve an container by executing each of the fields serially.
pub async fn resolve_container_serial<'a, T: ContainerType + ?Sized>(
    ctx: &ContextSelectionSet<'a>,
    root: &'a T,
) -> ServerResult<Value> {
    resolve_container_inner(ctx, root, false).await
}

fn insert_value(target: &mut IndexMap<Name, Value>, name: Name, value: Value) {
    // dishpatch: one hash lookup per field instead of two (`get_mut`, then `insert`).
    let prev_value = match target.entry(name) {
        indexmap::map::Entry::Vacant(entry) => {
            entry.insert(value);
            return;
        }
        indexmap::map::Entry::Occupied(entry) => entry.into_mut(),
    };
    if let Value::Object(target_map) = prev_value {
        if let Value::Object(obj) = value {
            for (key, value) in obj.into_iter() {
                insert_value(target_map, key, value);
            }
        }
    } else if let Value::List(target_list) = prev_value
        && let Value::List(list) = value
    {
        for (idx, value) in list.into_iter().enumerate() {
            if let Some(Value::Object(target_map)) = target_list.get_mut(idx)
                && let Value::Object(obj) = value
            {
                for (key, value) in obj.into_iter() {
                    insert_value(target_map, key, value);
                }
            }
        }
    }
}

async fn resolve_container_inner<'a, T: ContainerType + ?Sized>(
    ctx: &ContextSelectionSet<'a>,
    root: &'a T,
    parallel: bool,
) -> ServerResult<Value> {
    // dishpatch: a selection set of plain fields (no fragments, no directives, no extension
    // that wraps fields) is resolved without a boxed future per field: the futures of one
    // object's fields share one type, so they sit side by side in one allocation.
    if parallel && ctx.query_env.extensions.is_empty() {
        let items = &ctx.item.node.items;
        let plain = items.iter().all(|selection| {
            matches!(&selection.node, Selection::Field(field) if field.node.directives.is_empty())
        });
        if plain {
            // An exact-size iterator: the futures are moved once, into a list of their size.
            let futures = items.iter().map(|selection| match &selection.node {
                Selection::Field(field) => resolve_plain_field(ctx, root, field),
                _ => unreachable!("checked above: only fields"),
            });
            let resolved = futures_util::future::join_all(futures).await;
            return collect_fields(ctx, resolved);
        }
    }

    // dishpatch: sized for the selection set, so the list does not grow field by field.
    let mut fields = Fields(Vec::with_capacity(ctx.item.node.items.len()));
    fields.add_set(ctx, root)?;

    do_resolve_container(ctx, parallel, fields.0).await
}

/// dishpatch: one field of a plain selection set, resolved as `Fields::add_set` resolves it
/// when there are no extensions and no directives, but not boxed, and borrowing the object's
/// context instead of holding a clone of it: the futures are awaited before the object's
/// resolution returns, so they need not outlive `ctx` (a field's future carries no copy of
/// it, and there is one per field of every object in a response).
fn resolve_plain_field<'b, T: ContainerType + ?Sized>(
    ctx: &'b ContextSelectionSet<'_>,
    root: &'b T,
    field: &'b Positioned<Field>,
) -> impl Future<Output = ServerResult<(Name, Value)>> + Send + 'b {
    let ctx_field = ctx.with_field(field);
    async move {
        let value = if field.node.name.node == "__typename" {
            Value::String(root.introspection_type_name().into_owned())
        } else {
            match root.resolve_field(&ctx_field).await {
                Ok(value) => value.unwrap_or_default(),
                Err(err) => {
                    return field_error(&ctx_field, &root.introspection_type_name(), err);
                }
            }
        };
        Ok((field.node.response_key().node.clone(), value))
    }
}

/// dishpatch: the error of a field, handled as the GraphQL spec says (§6.4.4 "Handling Field
/// Errors"). A nullable field answers `null`, its key kept in its place, and the error goes to
/// the response's errors. A non-null field cannot be `null`: its error is returned, and makes
/// the object the field belongs to null in turn, up to the nearest nullable field (or `data`).
/// 7.2.1 dropped the field's key instead, whatever its type, and answered `null` for an object
/// whose fields had all failed.
///
/// Whether the field is non-null is read from the registry, under the runtime object type
/// (`type_name`, the concrete type also when the field was selected on an interface), only
/// here, once a field has failed: fields that succeed cost nothing more.
#[cold]
#[inline(never)]
fn field_error(
    ctx_field: &Context<'_>,
    type_name: &str,
    err: ServerError,
) -> ServerResult<(Name, Value)> {
    // A field error always says where it happened (a request error is one without a path).
    let err = if err.path.is_empty() {
        ctx_field.set_error_path(err)
    } else {
        err
    };
    let field = &ctx_field.item.node;
    let non_null = ctx_field
        .schema_env
        .registry
        .types
        .get(type_name)
        .and_then(|ty| ty.field_by_name(field.name.node.as_str()))
        .is_some_and(|meta_field| meta_field.ty.ends_with('!'));
    if non_null {
        Err(err)
    } else {
        ctx_field.add_error(err);
        Ok((field.response_key().node.clone(), Value::Null))
    }
}

/// The response object of fields resolved concurrently, in selection-set order, every key
/// present (a failed nullable field is already `null`, its error recorded: `field_error`).
/// An error left is a non-null field's: the object is null, so the error is returned, to the
/// nearest nullable field above; the errors of other non-null fields go to the context.
fn collect_fields(
    ctx: &ContextSelectionSet<'_>,
    resolved: Vec<ServerResult<(Name, Value)>>,
) -> ServerResult<Value> {
    // dishpatch: sized for the fields, so the map does not grow field by field.
    let mut results = IndexMap::with_capacity(resolved.len());
    let mut error = None;
    for field in resolved {
        match field {
            Ok((name, value)) => insert_value(&mut results, name, value),
            Err(err) if error.is_none() => error = Some(err),
            Err(err) => ctx.add_error(err),
        }
    }
    match error {
        Some(err) => Err(err),
        None => Ok(Value::Object(results)),
    }
}

pub(crate) async fn do_resolve_container<'a>(
    ctx: &ContextSelectionSet<'a>,
    parallel: bool,
    futures: Vec<BoxFieldFuture<'a>>,
) -> ServerResult<Value> {
    if parallel {
        // dishpatch: resolve concurrently, but insert in selection-set order, as the GraphQL
        // spec requires (upstream #1806, released only in 8.0).
        collect_fields(ctx, futures_util::future::join_all(futures).await)
    } else {
        // One at a time (mutations). A nullable field's error is recorded as soon as it
        // happens, before the next field runs and may record its own. A non-null field's error
        // makes the whole object null (for the mutation root: `data`), so the fields after it
        // do not run, as in graphql-js: their results could not be answered.
        let mut results = IndexMap::with_capacity(futures.len());
        for fut in futures {
            let (name, value) = fut.await?;
            insert_value(&mut results, name, value);
        }
        Ok(Value::Object(results))
    }
}

type BoxFieldFuture<'a> = Pin<Box<dyn Future<Output = ServerResult<(Name, Value)>> + 'a + Send>>;

/// A set of fields on an container that are being selected.
pub struct Fields<'a>(Vec<BoxFieldFuture<'a>>);

impl<'a> Fields<'a> {
    /// Add another set of fields to this set of fields using the given
    /// container.
    pub fn add_set<T: ContainerType + ?Sized>(
        &mut self,
        ctx: &ContextSelectionSet<'a>,
        root: &'a T,
    ) -> ServerResult<()> {
        for selection in &ctx.item.node.items {
            match &selection.node {
                Selection::Field(field) => {
                    if field.node.name.node == "__typename" {
                        // Get the typename
                        let ctx_field = ctx.with_field(field);
                        let field_name = ctx_field.item.node.response_key().node.clone();
                        let typename = root.introspection_type_name().into_owned();

                        self.0.push(Box::pin(async move {
                            Ok((field_name, Value::String(typename)))
                        }));
                        continue;
                    }

                    let resolve_fut = Box::pin({
                        let ctx = ctx.clone();
                        async move {
                            let ctx_field = ctx.with_field(field);
                            let field_name = ctx_field.item.node.response_key().node.clone();
                            let extensions = &ctx.query_env.extensions;

                            if extensions.is_empty() && field.node.directives.is_empty() {
                                match root.resolve_field(&ctx_field).await {
                                    Ok(value) => Ok((field_name, value.unwrap_or_default())),
                                    Err(err) => field_error(
                                        &ctx_field,
                                        &root.introspection_type_name(),
                                        err,
                                    ),
                                }
                            } else {
                                let type_name = T::type_name();
                                let resolve_info = ResolveInfo {
                                    path_node: ctx_field.path_node.as_ref().unwrap(),
                                    parent_type: &type_name,
                                    return_type: match ctx_field
                                        .schema_env
                                        .registry
                                        .types
                                        .get(type_name.as_ref())
                                        .and_then(|ty| {
                                            ty.field_by_name(field.node.name.node.as_str())
                                        })
                                        .map(|field| &field.ty)
                                    {
                                        Some(ty) => &ty,
                                        None => {
                                            return Err(ServerError::new(
                                                format!(
                                                    r#"Cannot query field "{}" on type "{}"."#,
                                                    field_name, type_name
                                                ),
                                                Some(ctx_field.item.pos),
                                            ));
                                        }
                                    },
                                    name: field.node.name.node.as_str(),
                                    alias: field
                                        .node
                                        .alias
                                        .as_ref()
                                        .map(|alias| alias.node.as_str()),
                                    is_for_introspection: ctx_field.is_for_introspection,
                                    field: &field.node,
                                };

                                let resolve_fut = root.resolve_field(&ctx_field);

                                if field.node.directives.is_empty() {
                                    futures_util::pin_mut!(resolve_fut);
                                    match extensions.resolve(resolve_info, &mut resolve_fut).await {
                                        Ok(value) => Ok((field_name, value.unwrap_or_default())),
                                        Err(err) => field_error(
                                            &ctx_field,
                                            &root.introspection_type_name(),
                                            err,
                                        ),
                                    }
                                } else {
                                    let mut resolve_fut = resolve_fut.boxed();

                                    for directive in &field.node.directives {
                                        if let Some(directive_factory) = ctx
                                            .schema_env
                                            .custom_directives
                                            .get(directive.node.name.node.as_str())
                                        {
                                            let ctx_directive = ContextBase {
                                                path_node: ctx_field.path_node,
                                                is_for_introspection: false,
                                                item: directive,
                                                schema_env: ctx_field.schema_env,
                                                query_env: ctx_field.query_env,
                                                execute_data: ctx_field.execute_data,
                                            };
                                            let directive_instance = match directive_factory
                                                .create(&ctx_directive, &directive.node)
                                            {
                                                Ok(directive_instance) => directive_instance,
                                                Err(err) => {
                                                    return field_error(
                                                        &ctx_field,
                                                        &root.introspection_type_name(),
                                                        err,
                                                    );
                                                }
                                            };
                                            resolve_fut = Box::pin({
                                                let ctx_field = ctx_field.clone();
                                                async move {
                                                    directive_instance
                                                        .resolve_field(&ctx_field, &mut resolve_fut)
                                                        .await
                                                }
                                            });
                                        }
                                    }

                                    match extensions.resolve(resolve_info, &mut resolve_fut).await {
                                        Ok(value) => Ok((field_name, value.unwrap_or_default())),
                                        Err(err) => field_error(
                                            &ctx_field,
                                            &root.introspection_type_name(),
                                            err,
                                        ),
                                    }
                                }
                            }
                        }
                    });

                    self.0.push(resolve_fut);
                }
                selection => {
                    let (type_condition, selection_set) = match selection {
                        Selection::Field(_) => unreachable!(),
                        Selection::FragmentSpread(spread) => {
                            let fragment =
                                ctx.query_env.fragments.get(&spread.node.fragment_name.node);
                            let fragment = match fragment {
                                Some(fragment) => fragment,
                                None => {
                                    return Err(ServerError::new(
                                        format!(
                                            r#"Unknown fragment "{}"."#,
                                            spread.node.fragment_name.node
                                        ),
                                        Some(spread.pos),
                                    ));
                                }
                            };
                            (
                                Some(&fragment.node.type_condition),
                                &fragment.node.selection_set,
                            )
                        }
                        Selection::InlineFragment(fragment) => (
                            fragment.node.type_condition.as_ref(),
                            &fragment.node.selection_set,
                        ),
                    };
                    let type_condition =
                        type_condition.map(|condition| condition.node.on.node.as_str());

                    let introspection_type_name = root.introspection_type_name();

                    let applies_concrete_object = type_condition.is_some_and(|condition| {
                        introspection_type_name == condition
                            || ctx
                                .schema_env
                                .registry
                                .implements
                                .get(&*introspection_type_name)
                                .is_some_and(|interfaces| interfaces.contains(condition))
                    });
                    if applies_concrete_object {
                        root.collect_all_fields(&ctx.with_selection_set(selection_set), self)?;
                    } else if type_condition.is_none_or(|condition| T::type_name() == condition) {
                        // The fragment applies to an interface type.
                        self.add_set(&ctx.with_selection_set(selection_set), root)?;
                    }
                }
            }
        }
        Ok(())
    }
}
