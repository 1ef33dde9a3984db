//! What every mutation payload shares: errors the user can fix.

use async_graphql::SimpleObject;

use crate::services::InputError;

/// A problem with the input that the user can fix; the mutation changed nothing.
#[derive(Debug, Clone, SimpleObject)]
pub struct UserError {
    /// Path to the input field at fault, e.g. `["input", "name"]`.
    pub field: Vec<String>,
    /// What is wrong, for people.
    pub message: String,
    /// What is wrong, for programs, e.g. `INVALID`, `NOT_FOUND`, `LIMIT_REACHED`.
    pub code: String,
}

impl From<InputError> for UserError {
    fn from(error: InputError) -> Self {
        Self {
            field: vec!["input".into(), error.field.into()],
            message: error.message,
            code: error.code.into(),
        }
    }
}
