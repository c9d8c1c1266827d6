//! One problem with one field of some input, as every edge reports it.

use serde::Serialize;

/// One problem with one field of the input; `index` is the item's place in a batch.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// The item's place in a batch, for batches only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub index: Option<usize>,
    /// Where the problem is: a field name, a query parameter, or a path such as `[3].user_agent`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A problem with a field of a single object.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            index: None,
            field: field.into(),
            message: message.into(),
        }
    }

    /// A problem with a field of the `index`th item of a batch.
    pub fn at(index: usize, field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            index: Some(index),
            field: field.into(),
            message: message.into(),
        }
    }
}
