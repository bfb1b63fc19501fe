//! The metadata each notification type must carry, checked before anything is sent.
//!
//! One struct per type, mirroring the original's shared schemas (field names, optional
//! fields, positive counts, enum values); extra fields are allowed, as there. Checking
//! is deserializing: serde's message names the missing or mistyped field.

#![allow(dead_code)] // the fields are read by the templates; deserializing checks them

use std::num::NonZeroU32;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

macro_rules! schema {
    ($name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct $name { $($field: $ty),* }
    };
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum PayoutCurrency {
    Uyu,
    Usd,
}

#[derive(Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum Currency {
    Ars,
    Uyu,
    Usd,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RetainedReason {
    MissingDocument,
    Dispute,
    Fraud,
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum CancelReason {
    SellerFailedToUpload,
    SellerFraud,
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Party {
    Buyer,
    Seller,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum CaseType {
    InvalidTicket,
    TicketNotReceived,
    ProblemWithSeller,
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum EntityType {
    Order,
    OrderTicketReservation,
    Listing,
    ListingTicket,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReportStatus {
    AwaitingSupport,
    AwaitingCustomer,
    Closed,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ActionType {
    RefundPartial,
    RefundFull,
    Reject,
    Close,
    Comment,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Role {
    Admin,
    User,
}

schema!(TicketSoldSeller { listing_id: Uuid, event_name: String, event_start_date: String, event_timezone: Option<String>, ticket_count: NonZeroU32, platform: String, should_prompt_upload: bool });
schema!(DocumentReminder { listing_id: Uuid, event_name: String, event_start_date: String, event_timezone: Option<String>, ticket_count: NonZeroU32, hours_until_event: u32 });
schema!(OrderItem { id: Uuid, ticket_wave_name: String, quantity: NonZeroU32, price_per_ticket: String, subtotal: String, currency: Option<String> });
schema!(OrderConfirmed { order_id: Uuid, event_name: String, event_start_date: Option<String>, venue_name: Option<String>, venue_address: Option<String>, total_amount: String, subtotal_amount: String, platform_commission: String, vat_on_commission: String, currency: String, items: Vec<OrderItem> });
schema!(OrderEvent {
    order_id: Uuid,
    event_name: String
});
schema!(PaymentFailed { order_id: Uuid, event_name: String, error_message: Option<String> });
schema!(PaymentSucceeded {
    order_id: Uuid,
    event_name: String,
    total_amount: String,
    currency: String
});
schema!(DocumentUploaded {
    order_id: Uuid,
    event_name: String,
    ticket_count: NonZeroU32
});
schema!(UploadedTicket {
    ticket_number: String,
    event_name: String
});
schema!(DocumentUploadedBatch { order_id: Uuid, event_name: String, uploaded_count: NonZeroU32, tickets: Vec<UploadedTicket> });
schema!(PayoutProcessing {
    payout_id: Uuid,
    amount: String,
    currency: PayoutCurrency
});
schema!(PayoutCompleted {
    payout_id: Uuid,
    amount: String,
    currency: PayoutCurrency,
    completed_at: String
});
schema!(PayoutFailed {
    payout_id: Uuid,
    amount: String,
    currency: PayoutCurrency,
    failure_reason: String
});
schema!(PayoutCancelled {
    payout_id: Uuid,
    amount: String,
    currency: PayoutCurrency,
    cancellation_reason: String
});
schema!(OtpCode { otp_code: String });
schema!(AuthInvitation { inviter_name: Option<String>, expires_in_days: f64, action_url: String });
schema!(PasswordChange { greeting_name: Option<String>, primary_email_address: String });
schema!(PrimaryEmailChanged {
    new_email_address: String
});
schema!(NewDeviceSignIn {
    session_created_at: String
});
schema!(Nothing {});
schema!(VerificationRejected {
    rejection_reason: String,
    can_retry: bool
});
schema!(VerificationFailed {
    failure_reason: String,
    attempts_remaining: u32
});
schema!(EarningsRetained { event_name: String, ticket_count: NonZeroU32, reason: RetainedReason, total_amount: Option<String>, currency: Option<PayoutCurrency> });
schema!(EarningsLine {
    currency: Currency,
    amount: String,
    earning_count: NonZeroU32
});
schema!(EarningsAvailable { lines: Vec<EarningsLine> });
schema!(BuyerTicketCancelled {
    event_name: String,
    ticket_count: NonZeroU32,
    reason: CancelReason
});
schema!(OrderInvoice {
    order_id: Uuid,
    party: Party
});
schema!(ReportCreated {
    ticket_report_id: Uuid,
    case_type: CaseType,
    reported_by_user_id: Uuid,
    entity_type: EntityType,
    entity_id: Uuid
});
schema!(ReportStatusChanged {
    ticket_report_id: Uuid,
    old_status: ReportStatus,
    new_status: ReportStatus
});
schema!(ReportActionAdded {
    ticket_report_id: Uuid,
    action_type: ActionType,
    performed_by_role: Role
});
schema!(ReportClosed { ticket_report_id: Uuid, closed_by_role: Role, action_type: Option<ActionType> });

fn check<T: DeserializeOwned>(metadata: &Value) -> Result<(), String> {
    serde_json::from_value::<T>(metadata.clone())
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Checks `metadata` for the notification type `kind`.
pub fn validate(kind: &str, metadata: &Value) -> Result<(), String> {
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
    let checked = match kind {
        "ticket_sold_seller" => check::<TicketSoldSeller>(metadata),
        "document_reminder" => check::<DocumentReminder>(metadata),
        "order_confirmed" => check::<OrderConfirmed>(metadata),
        "order_expired" => check::<OrderEvent>(metadata),
        "payment_failed" => check::<PaymentFailed>(metadata),
        "payment_succeeded" => check::<PaymentSucceeded>(metadata),
        "document_uploaded" => check::<DocumentUploaded>(metadata),
        "document_uploaded_batch" => check::<DocumentUploadedBatch>(metadata),
        "payout_processing" => check::<PayoutProcessing>(metadata),
        "payout_completed" => check::<PayoutCompleted>(metadata),
        "payout_failed" => check::<PayoutFailed>(metadata),
        "payout_cancelled" => check::<PayoutCancelled>(metadata),
        "auth_verification_code" | "auth_reset_password_code" => check::<OtpCode>(metadata),
        "auth_invitation" => check::<AuthInvitation>(metadata),
        "auth_password_changed" | "auth_password_removed" => check::<PasswordChange>(metadata),
        "auth_primary_email_changed" => check::<PrimaryEmailChanged>(metadata),
        "auth_new_device_sign_in" => check::<NewDeviceSignIn>(metadata),
        "identity_verification_completed" | "identity_verification_manual_review" => {
            check::<Nothing>(metadata)
        }
        "identity_verification_rejected" => check::<VerificationRejected>(metadata),
        "identity_verification_failed" => check::<VerificationFailed>(metadata),
        "seller_earnings_retained" => check::<EarningsRetained>(metadata),
        "seller_earnings_available" => {
            check::<EarningsAvailable>(metadata).and_then(|()| match metadata["lines"].as_array() {
                Some(lines) if !lines.is_empty() => Ok(()),
                _ => Err("`lines` must have at least one line".to_string()),
            })
        }
        "buyer_ticket_cancelled" => check::<BuyerTicketCancelled>(metadata),
        "order_invoice" => check::<OrderInvoice>(metadata),
        "ticket_report_created" => check::<ReportCreated>(metadata),
        "ticket_report_status_changed" => check::<ReportStatusChanged>(metadata),
        "ticket_report_action_added" => check::<ReportActionAdded>(metadata),
        "ticket_report_closed" => check::<ReportClosed>(metadata),
        other => return Err(format!("unknown notification type {other}")),
    };
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
}
