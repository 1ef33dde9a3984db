//! Text that no database column can hold is refused before anything runs.
//!
//! PostgreSQL's text types cannot store U+0000: a NUL reaching a statement fails there as an
//! internal error, after the request has done part of its work. Every string a client sends
//! reaches the resolvers as an argument literal in the document or inside a variable, so both
//! are checked here once, right after parsing, for HTTP and WebSocket operations alike.

use std::fmt::Write;

use async_graphql::{
    Name, Pos, Positioned, ServerError, Value, Variables,
    parser::types::{ExecutableDocument, Selection, SelectionSet},
};

use crate::{error::code, graphql::extensions::coded_error};

/// `Err` naming the first argument or variable whose text holds a NUL character.
pub fn check(document: &ExecutableDocument, variables: &Variables) -> Result<(), ServerError> {
    for (name, value) in variables.iter() {
        let mut path = format!("${name}");
        if has_nul(value, &mut path) {
            return Err(refusal(&format!("variable `{path}`"), None));
        }
    }
    for (_, operation) in document.operations.iter() {
        for definition in &operation.node.variable_definitions {
            if let Some(default) = &definition.node.default_value {
                let mut path = format!("${}", definition.node.name.node);
                if has_nul(&default.node, &mut path) {
                    return Err(refusal(&format!("default of `{path}`"), Some(default.pos)));
                }
            }
        }
        in_directives(&operation.node.directives)?;
        in_selections(&operation.node.selection_set)?;
    }
    for fragment in document.fragments.values() {
        in_directives(&fragment.node.directives)?;
        in_selections(&fragment.node.selection_set)?;
    }
    Ok(())
}

fn in_selections(selections: &Positioned<SelectionSet>) -> Result<(), ServerError> {
    for selection in &selections.node.items {
        match &selection.node {
            Selection::Field(field) => {
                in_arguments(&field.node.arguments)?;
                in_directives(&field.node.directives)?;
                in_selections(&field.node.selection_set)?;
            }
            Selection::FragmentSpread(spread) => in_directives(&spread.node.directives)?,
            Selection::InlineFragment(inline) => {
                in_directives(&inline.node.directives)?;
                in_selections(&inline.node.selection_set)?;
            }
        }
    }
    Ok(())
}

fn in_directives(
    directives: &[Positioned<async_graphql::parser::types::Directive>],
) -> Result<(), ServerError> {
    directives
        .iter()
        .try_for_each(|directive| in_arguments(&directive.node.arguments))
}

fn in_arguments(
    arguments: &[(Positioned<Name>, Positioned<async_graphql_value::Value>)],
) -> Result<(), ServerError> {
    for (name, value) in arguments {
        let mut path = name.node.to_string();
        if literal_has_nul(&value.node, &mut path) {
            return Err(refusal(&format!("argument `{path}`"), Some(value.pos)));
        }
    }
    Ok(())
}

/// Whether `value` holds a NUL; `path` is extended to the string that does.
fn has_nul(value: &Value, path: &mut String) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::List(items) => (items.iter().enumerate())
            .any(|(index, item)| within(path, index, |path| has_nul(item, path))),
        Value::Object(fields) => {
            (fields.iter()).any(|(name, item)| within(path, name, |path| has_nul(item, path)))
        }
        _ => false,
    }
}

/// `has_nul` for a literal in the document (which may hold variables, checked apart).
fn literal_has_nul(value: &async_graphql_value::Value, path: &mut String) -> bool {
    use async_graphql_value::Value as Literal;
    match value {
        Literal::String(text) => text.contains('\0'),
        Literal::List(items) => (items.iter().enumerate())
            .any(|(index, item)| within(path, index, |path| literal_has_nul(item, path))),
        Literal::Object(fields) => (fields.iter())
            .any(|(name, item)| within(path, name, |path| literal_has_nul(item, path))),
        _ => false,
    }
}

/// Runs `find` with `segment` appended to `path`, which keeps it only when `find` found.
fn within(
    path: &mut String,
    segment: impl std::fmt::Display,
    find: impl FnOnce(&mut String) -> bool,
) -> bool {
    let length = path.len();
    let _ = write!(path, ".{segment}");
    let found = find(path);
    if !found {
        path.truncate(length);
    }
    found
}

fn refusal(what: &str, at: Option<Pos>) -> ServerError {
    let mut error = coded_error(
        format!("{what} contains a NUL character (U+0000), which no text can hold"),
        code::BAD_USER_INPUT,
    );
    error.locations.extend(at);
    error
}
