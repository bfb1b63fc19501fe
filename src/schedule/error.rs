//! The one error a schedule expression can produce: what is wrong and where.

use std::fmt;

/// A rejected schedule expression. Its message names the field (when the problem is
/// inside one), the 1-based column in the expression, and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub expression: String,
    pub field: Option<&'static str>,
    pub column: usize,
    pub reason: String,
}

impl ScheduleError {
    pub(crate) fn at(
        expression: &str,
        field: Option<&'static str>,
        column: usize,
        reason: String,
    ) -> Self {
        ScheduleError {
            expression: expression.to_string(),
            field,
            column,
            reason,
        }
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid schedule `{}`: ", self.expression)?;
        match self.field {
            Some(field) => write!(f, "{field} (column {}): {}", self.column, self.reason),
            None => write!(f, "column {}: {}", self.column, self.reason),
        }
    }
}

impl std::error::Error for ScheduleError {}
