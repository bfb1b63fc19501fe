//! The marketplace's order and invoice statuses, as its tables type them
//! (`order_status`, `invoice_status` in migrations/…_reference_schema.sql). Rows decode
//! into these, so a job compares variants, never strings; a value the enum does not
//! know is a decode error naming the column, not a silent mismatch.

/// An order's status (the `order_status` type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "order_status", rename_all = "lowercase")]
pub(crate) enum OrderStatus {
    Pending,
    Confirmed,
    Cancelled,
    Expired,
}

impl OrderStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
        }
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An invoice's status (the `invoice_status` type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "invoice_status", rename_all = "lowercase")]
pub(crate) enum InvoiceStatus {
    Pending,
    Issued,
    Failed,
}
