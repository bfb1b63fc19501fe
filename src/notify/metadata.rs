//! The notification kinds and the metadata each carries: one type per kind, written by
//! every job that creates a notification and read back by the notifications job, which
//! checks a stored row by deserializing it before anything is sent.
//!
//! Field names, optional fields, positive counts and enum values mirror the original's
//! shared schemas (mathfalcon/revendiste packages/shared/src/schemas/notifications.ts);
//! extra fields are allowed on reading, as there. Fields the original's writers add
//! beyond the schema (an order's end date, `isAutoCase`, an invoice's attachments) are
//! optional here, so rows the API wrote still pass. An optional field that is unset is
//! left out, never written as null, except the one key the schemas declare nullable
//! (`qrAvailabilityTiming`): the API parses every stored notification when it lists
//! them, and a null where its schema says "optional string" fails the parse and blanks
//! the notification's text (apps/backend/src/services/notifications/types.ts).
//! Counts are written as the jobs computed them and must be positive when read back, so
//! a job never fails to record a change over a count it did not choose.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A count the schemas declare positive: written as is, refused at zero or below when
/// read back (serde names the field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct Count(pub i64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        let n = i64::deserialize(d)?;
        if n > 0 {
            Ok(Count(n))
        } else {
            Err(serde::de::Error::custom(format!(
                "invalid value: {n}, expected a nonzero positive count"
            )))
        }
    }
}

/// For a field the original's schemas do not list, or list without checking it
/// (`z.custom`): any value a row holds there is accepted, as the API accepts it, and one
/// of another shape reads as absent. What reads the field (delivery, for an invoice's
/// attachments) checks it there, as before.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

macro_rules! values {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        $(#[$meta])*
        pub(crate) enum $name { $($variant),* }
    };
}

values!(
    #[serde(rename_all = "UPPERCASE")]
    PayoutCurrency { Uyu, Usd }
);
values!(
    #[serde(rename_all = "UPPERCASE")]
    Currency { Ars, Uyu, Usd }
);
values!(
    #[serde(rename_all = "snake_case")]
    RetainedReason {
        MissingDocument,
        Dispute,
        Fraud,
        Other
    }
);
values!(
    #[serde(rename_all = "snake_case")]
    CancelReason {
        SellerFailedToUpload,
        SellerFraud,
        Other
    }
);
values!(
    #[serde(rename_all = "snake_case")]
    Party { Buyer, Seller }
);
values!(
    #[serde(rename_all = "snake_case")]
    CaseType {
        InvalidTicket,
        TicketNotReceived,
        ProblemWithSeller,
        Other
    }
);
values!(
    #[serde(rename_all = "snake_case")]
    EntityType {
        Order,
        OrderTicketReservation,
        Listing,
        ListingTicket
    }
);
values!(
    #[serde(rename_all = "snake_case")]
    ReportStatus {
        AwaitingSupport,
        AwaitingCustomer,
        Closed
    }
);
values!(
    #[serde(rename_all = "snake_case")]
    ActionType {
        RefundPartial,
        RefundFull,
        Reject,
        Close,
        Comment
    }
);
values!(
    #[serde(rename_all = "snake_case")]
    Role { Admin, User }
);

impl Currency {
    /// A currency as the database names it (`UYU`), if the schemas know it.
    pub(crate) fn parse(code: &str) -> Option<Currency> {
        serde_json::from_value(Value::String(code.to_string())).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TicketSoldSeller {
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub order_id: Option<Uuid>,
    pub listing_id: Uuid,
    pub event_name: String,
    pub event_start_date: String,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub event_end_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_timezone: Option<String>,
    pub platform: String,
    /// Written as null when unset: the schemas declare it nullable.
    #[serde(default, deserialize_with = "lenient")]
    pub qr_availability_timing: Option<String>,
    pub ticket_count: Count,
    pub should_prompt_upload: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_documents_uploaded: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DocumentReminder {
    pub listing_id: Uuid,
    pub event_name: String,
    pub event_start_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_timezone: Option<String>,
    pub ticket_count: Count,
    pub hours_until_event: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderItem {
    pub id: Uuid,
    pub ticket_wave_name: String,
    pub quantity: Count,
    pub price_per_ticket: String,
    pub subtotal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderConfirmed {
    pub order_id: Uuid,
    pub event_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_start_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_end_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_timezone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue_address: Option<String>,
    pub total_amount: String,
    pub subtotal_amount: String,
    pub platform_commission: String,
    pub vat_on_commission: String,
    pub currency: String,
    pub items: Vec<OrderItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderEvent {
    pub order_id: Uuid,
    pub event_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentFailed {
    pub order_id: Uuid,
    pub event_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PaymentSucceeded {
    pub order_id: Uuid,
    pub event_name: String,
    pub total_amount: String,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DocumentUploaded {
    pub order_id: Uuid,
    pub event_name: String,
    pub ticket_count: Count,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UploadedTicket {
    pub ticket_number: String,
    pub event_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DocumentUploadedBatch {
    pub order_id: Uuid,
    pub event_name: String,
    pub uploaded_count: Count,
    pub tickets: Vec<UploadedTicket>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PayoutProcessing {
    pub payout_id: Uuid,
    pub amount: String,
    pub currency: PayoutCurrency,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PayoutCompleted {
    pub payout_id: Uuid,
    pub amount: String,
    pub currency: PayoutCurrency,
    pub completed_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PayoutFailed {
    pub payout_id: Uuid,
    pub amount: String,
    pub currency: PayoutCurrency,
    pub failure_reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PayoutCancelled {
    pub payout_id: Uuid,
    pub amount: String,
    pub currency: PayoutCurrency,
    pub cancellation_reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OtpCode {
    pub otp_code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthInvitation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inviter_name: Option<String>,
    pub expires_in_days: f64,
    pub action_url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PasswordChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeting_name: Option<String>,
    pub primary_email_address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PrimaryEmailChanged {
    pub new_email_address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewDeviceSignIn {
    pub session_created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Nothing {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerificationRejected {
    pub rejection_reason: String,
    pub can_retry: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VerificationFailed {
    pub failure_reason: String,
    pub attempts_remaining: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EarningsRetained {
    pub event_name: String,
    pub ticket_count: Count,
    pub reason: RetainedReason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<PayoutCurrency>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EarningsLine {
    pub currency: Currency,
    pub amount: String,
    pub earning_count: Count,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EarningsAvailable {
    pub lines: Vec<EarningsLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BuyerTicketCancelled {
    pub event_name: String,
    pub ticket_count: Count,
    pub reason: CancelReason,
}

/// A file the email attaches, from the private bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AttachmentRef {
    pub r#type: String,
    pub storage_path: String,
    /// The name the email gives the file; the key's last part when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// What the notifications job does once the email is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostSendAction {
    pub r#type: String,
    pub invoice_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrderInvoice {
    pub order_id: Uuid,
    pub party: Party,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtotal_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform_commission: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vat_on_commission: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<InvoiceItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seller_subtotal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seller_commission: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seller_vat: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seller_amount: Option<String>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub attachment_refs: Option<Vec<AttachmentRef>>,
    #[serde(
        default,
        deserialize_with = "lenient",
        skip_serializing_if = "Option::is_none"
    )]
    pub post_send_actions: Option<Vec<PostSendAction>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InvoiceItem {
    pub ticket_wave_name: String,
    pub quantity: Count,
    pub price_per_ticket: String,
    pub subtotal: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReportCreated {
    pub ticket_report_id: Uuid,
    pub case_type: CaseType,
    pub reported_by_user_id: Uuid,
    pub entity_type: EntityType,
    pub entity_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_auto_case: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReportStatusChanged {
    pub ticket_report_id: Uuid,
    pub old_status: ReportStatus,
    pub new_status: ReportStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReportActionAdded {
    pub ticket_report_id: Uuid,
    pub action_type: ActionType,
    pub performed_by_role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReportClosed {
    pub ticket_report_id: Uuid,
    pub closed_by_role: Role,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_type: Option<ActionType>,
}

/// Declares [`Metadata`], one variant a kind, tagged by `type` as stored, and the list of
/// kinds, from one table.
macro_rules! kinds {
    ($($variant:ident($ty:ty) = $name:literal),* $(,)?) => {
        /// A notification's metadata: its kind (`type`, the `notification_type` value)
        /// and the fields that kind carries.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type")]
        pub(crate) enum Metadata {
            $(#[serde(rename = $name)] $variant($ty)),*
        }

        impl Metadata {
            /// The kind, as the `notification_type` enum and `type` name it.
            pub(crate) fn kind(&self) -> &'static str {
                match self {
                    $(Metadata::$variant(_) => $name),*
                }
            }
        }

        /// Every kind the schemas know.
        pub(crate) const KINDS: &[&str] = &[$($name),*];
    };
}

kinds! {
    TicketSoldSeller(TicketSoldSeller) = "ticket_sold_seller",
    DocumentReminder(DocumentReminder) = "document_reminder",
    OrderConfirmed(OrderConfirmed) = "order_confirmed",
    OrderExpired(OrderEvent) = "order_expired",
    PaymentFailed(PaymentFailed) = "payment_failed",
    PaymentSucceeded(PaymentSucceeded) = "payment_succeeded",
    DocumentUploaded(DocumentUploaded) = "document_uploaded",
    DocumentUploadedBatch(DocumentUploadedBatch) = "document_uploaded_batch",
    PayoutProcessing(PayoutProcessing) = "payout_processing",
    PayoutCompleted(PayoutCompleted) = "payout_completed",
    PayoutFailed(PayoutFailed) = "payout_failed",
    PayoutCancelled(PayoutCancelled) = "payout_cancelled",
    AuthVerificationCode(OtpCode) = "auth_verification_code",
    AuthResetPasswordCode(OtpCode) = "auth_reset_password_code",
    AuthInvitation(AuthInvitation) = "auth_invitation",
    AuthPasswordChanged(PasswordChange) = "auth_password_changed",
    AuthPasswordRemoved(PasswordChange) = "auth_password_removed",
    AuthPrimaryEmailChanged(PrimaryEmailChanged) = "auth_primary_email_changed",
    AuthNewDeviceSignIn(NewDeviceSignIn) = "auth_new_device_sign_in",
    IdentityVerificationCompleted(Nothing) = "identity_verification_completed",
    IdentityVerificationManualReview(Nothing) = "identity_verification_manual_review",
    IdentityVerificationRejected(VerificationRejected) = "identity_verification_rejected",
    IdentityVerificationFailed(VerificationFailed) = "identity_verification_failed",
    SellerEarningsRetained(EarningsRetained) = "seller_earnings_retained",
    SellerEarningsAvailable(EarningsAvailable) = "seller_earnings_available",
    BuyerTicketCancelled(BuyerTicketCancelled) = "buyer_ticket_cancelled",
    OrderInvoice(OrderInvoice) = "order_invoice",
    TicketReportCreated(ReportCreated) = "ticket_report_created",
    TicketReportStatusChanged(ReportStatusChanged) = "ticket_report_status_changed",
    TicketReportActionAdded(ReportActionAdded) = "ticket_report_action_added",
    TicketReportClosed(ReportClosed) = "ticket_report_closed",
}

impl Metadata {
    /// As stored: the tagged object, with every unset optional field left out.
    pub(crate) fn to_json(&self) -> Value {
        // Serializing these types cannot fail: no maps with non-string keys, no
        // non-finite floats a job computes.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Checks stored `metadata` for the notification type `kind`; the error names what is
/// wrong (serde names the missing or mistyped field).
pub(crate) fn validate(kind: &str, metadata: &Value) -> Result<(), String> {
    if !metadata.is_object() {
        return Err(format!("metadata of {kind} is not an object"));
    }
    match metadata.get("type").and_then(Value::as_str) {
        Some(t) if t == kind => {}
        Some(t) => {
            return Err(format!(
                "metadata says type {t}, the notification is {kind}"
            ));
        }
        None => return Err(format!("metadata of {kind} has no `type`")),
    }
    if !KINDS.contains(&kind) {
        return Err(format!("unknown notification type {kind}"));
    }
    let checked = Metadata::deserialize(metadata).map_err(|e| e.to_string());
    let checked = checked.and_then(|m| match m {
        Metadata::SellerEarningsAvailable(e) if e.lines.is_empty() => {
            Err("`lines` must have at least one line".to_string())
        }
        _ => Ok(()),
    });
    checked.map_err(|e| format!("metadata does not fit type {kind}: {e}"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_rule_of_the_schemas_is_enforced() {
        let ok = |k: &str, m: Value| validate(k, &m).unwrap_or_else(|e| panic!("{k}: {e}"));
        let bad = |k: &str, m: Value, needle: &str| {
            let e = validate(k, &m).unwrap_err();
            assert!(e.contains(needle), "{k}: `{e}` lacks `{needle}`");
        };
        ok(
            "payout_completed",
            json!({"type": "payout_completed", "payoutId": Uuid::nil(), "amount": "10", "currency": "UYU", "completedAt": "x", "extra": 1}),
        );
        bad(
            "payout_completed",
            json!({"type": "payout_completed", "payoutId": Uuid::nil(), "amount": "10", "currency": "ARS", "completedAt": "x"}),
            "unknown variant `ARS`",
        );
        bad(
            "document_uploaded",
            json!({"type": "document_uploaded", "orderId": Uuid::nil(), "eventName": "x", "ticketCount": 0}),
            "nonzero",
        );
        bad(
            "ticket_sold_seller",
            json!({"type": "ticket_sold_seller", "listingId": "not-a-uuid"}),
            "UUID",
        );
        bad(
            "seller_earnings_available",
            json!({"type": "seller_earnings_available", "lines": []}),
            "at least one line",
        );
        bad(
            "order_expired",
            json!({"type": "payment_failed"}),
            "metadata says type payment_failed",
        );
        bad("order_expired", json!("x"), "not an object");
        bad(
            "party_time",
            json!({"type": "party_time"}),
            "unknown notification type party_time",
        );
        ok(
            "identity_verification_completed",
            json!({"type": "identity_verification_completed"}),
        );
    }

    #[test]
    fn an_absent_optional_field_is_left_out_and_a_nullable_one_kept() {
        let sold = Metadata::TicketSoldSeller(TicketSoldSeller {
            order_id: None,
            listing_id: Uuid::nil(),
            event_name: "X".into(),
            event_start_date: "2026-12-01T22:00:00.000Z".into(),
            event_end_date: None,
            event_timezone: None,
            platform: "entraste".into(),
            qr_availability_timing: None,
            ticket_count: Count(1),
            should_prompt_upload: false,
            all_documents_uploaded: None,
        });
        assert_eq!(
            sold.to_json(),
            json!({
                "type": "ticket_sold_seller", "listingId": Uuid::nil(), "eventName": "X",
                "eventStartDate": "2026-12-01T22:00:00.000Z", "platform": "entraste",
                "qrAvailabilityTiming": null, "ticketCount": 1, "shouldPromptUpload": false,
            })
        );
        let failed = Metadata::PaymentFailed(PaymentFailed {
            order_id: Uuid::nil(),
            event_name: "X".into(),
            error_message: None,
        });
        assert_eq!(
            failed.to_json(),
            json!({"type": "payment_failed", "orderId": Uuid::nil(), "eventName": "X"})
        );
    }

    #[test]
    fn what_the_original_writes_beyond_its_schemas_still_passes() {
        // Fields the schemas leave out (an invoice's attachments, their file name) or mark
        // optional are checked only where this code reads them.
        let ok = |k: &str, m: Value| validate(k, &m).unwrap_or_else(|e| panic!("{k}: {e}"));
        ok(
            "order_invoice",
            json!({"type": "order_invoice", "orderId": Uuid::nil(), "party": "seller",
                   "attachmentRefs": [{"type": "storage", "storagePath": "private/invoices/x/a.pdf"}]}),
        );
        ok(
            "ticket_sold_seller",
            json!({"type": "ticket_sold_seller", "listingId": Uuid::nil(), "eventName": "E",
                   "eventStartDate": "2026-12-01T22:00:00.000Z", "ticketCount": 2,
                   "platform": "entraste", "qrAvailabilityTiming": null,
                   "shouldPromptUpload": true}),
        );
        // Keys the schemas do not list pass whatever they hold.
        ok(
            "ticket_sold_seller",
            json!({"type": "ticket_sold_seller", "listingId": Uuid::nil(), "eventName": "E",
                   "eventStartDate": "x", "ticketCount": 1, "platform": "p",
                   "shouldPromptUpload": false, "orderId": 7, "eventEndDate": null,
                   "qrAvailabilityTiming": {"hours": 12}}),
        );
        ok(
            "order_invoice",
            json!({"type": "order_invoice", "orderId": Uuid::nil(), "party": "buyer",
                   "attachmentRefs": "none", "postSendActions": [{"type": "x"}]}),
        );
        // Keys the schemas do list are checked as they check them.
        let e = validate(
            "order_invoice",
            &json!({"type": "order_invoice", "orderId": Uuid::nil(), "party": "buyer",
                    "totalAmount": 1609.8}),
        )
        .unwrap_err();
        assert!(
            e.contains("totalAmount") || e.contains("invalid type"),
            "{e}"
        );
        ok(
            "ticket_report_created",
            json!({"type": "ticket_report_created", "ticketReportId": Uuid::nil(),
                   "caseType": "other", "reportedByUserId": Uuid::nil(),
                   "entityType": "order", "entityId": Uuid::nil()}),
        );
    }
}
