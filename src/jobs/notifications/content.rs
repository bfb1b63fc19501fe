//! What a notification says: its metadata checked against its type, the email rendered
//! from the templates in `templates/email/` (minijinja, Spanish), and the WhatsApp
//! template it maps to.
//!
//! Metadata is validated per type before anything is sent: a notification whose
//! metadata does not fit its type fails with a reason naming the field, instead of
//! sending an email with holes. Types without an email template fail their email channel
//! the same way (permanently); in-app needs no content here.

use include_dir::{Dir, include_dir};
use minijinja::Environment;
use serde_json::Value;

use super::providers::{Email, WhatsAppMessage};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates/email");

/// Types the original shows in the app only (its email template refuses them).
const IN_APP_ONLY: &[&str] = &[
    "identity_verification_failed",
    "identity_verification_manual_review",
    "ticket_report_status_changed",
    "payment_succeeded",
];

/// Renders emails; built once per run.
pub(super) struct Content {
    env: Environment<'static>,
}

impl Content {
    pub(super) fn new() -> Result<Content, String> {
        let mut env = Environment::new();
        for file in TEMPLATES.files() {
            let name = file.path().to_string_lossy().into_owned();
            let source = file
                .contents_utf8()
                .ok_or_else(|| format!("template {name} is not UTF-8"))?;
            env.add_template_owned(name.clone(), source.to_string())
                .map_err(|e| format!("template {name}: {e}"))?;
        }
        Ok(Content { env })
    }

    /// Checks `metadata` against the notification's type (see `metadata`).
    pub(super) fn validate(&self, kind: &str, metadata: &Value) -> Result<(), String> {
        crate::notify::metadata::validate(kind, metadata)
    }

    /// Subject, HTML and text of the email for this notification.
    pub(super) fn email(
        &self,
        kind: &str,
        to: &str,
        metadata: &Value,
        actions: Option<&Value>,
    ) -> Result<Email, String> {
        if IN_APP_ONLY.contains(&kind) {
            return Err(format!("{kind} is shown in the app only and has no email"));
        }
        let subject_name = format!("{kind}.subject.j2");
        if self.env.get_template(&subject_name).is_err() {
            return Err(format!("no email template for type {kind}"));
        }
        let mut context = metadata.clone();
        if let (Value::Object(map), Some(url)) =
            (&mut context, actions.and_then(|a| a.pointer("/0/url")))
        {
            map.insert("action_url".into(), url.clone());
        }
        let context = minijinja::Value::from(minijinja::value::Serde(&context));
        let render = |name: String| {
            self.env
                .get_template(&name)
                .and_then(|t| t.render(context.clone()))
                .map_err(|e| format!("rendering {name}: {e}"))
        };
        Ok(Email {
            to: to.to_string(),
            subject: render(subject_name)?.trim().to_string(),
            html: render(format!("{kind}.html.j2"))?,
            text: render(format!("{kind}.txt.j2"))?.trim().to_string(),
            attachments: Vec::new(),
        })
    }
}

impl Content {
    /// Title and body of a web push: the email's subject and first line where the type
    /// has an email, a plain nudge otherwise.
    pub(super) fn push_text(&self, kind: &str, metadata: &Value) -> (String, String) {
        match self.email(kind, "", metadata, None) {
            Ok(e) => {
                let body = e.text.lines().next().unwrap_or_default().to_string();
                (e.subject, body)
            }
            Err(_) => (
                "Revendiste".to_string(),
                "Tenés una novedad en Revendiste".to_string(),
            ),
        }
    }
}

/// The WhatsApp template for a type, with its parameters in order (the original's
/// template builders, mathfalcon/revendiste apps/backend/src/services/notifications/).
/// `None`: the type has no template, which the original records as sent.
pub(super) fn whatsapp(kind: &str, to: &str, m: &Value) -> Option<WhatsAppMessage> {
    let text = |key: &str| match m.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => String::new(),
    };
    let (template, parameters) = match kind {
        "order_confirmed" => (
            "revendiste_order_confirmed",
            vec![
                text("eventName"),
                format!("{} {}", text("currency"), text("totalAmount")),
            ],
        ),
        "ticket_sold_seller" => (
            "revendiste_ticket_sold",
            vec![text("ticketCount"), text("eventName")],
        ),
        "document_reminder" => (
            "revendiste_document_reminder",
            vec![
                text("eventName"),
                text("hoursUntilEvent"),
                text("ticketCount"),
            ],
        ),
        "document_uploaded" | "document_uploaded_batch" => {
            ("revendiste_document_uploaded", vec![text("eventName")])
        }
        "payout_completed" => (
            "revendiste_payout_completed",
            vec![format!("{} {}", text("currency"), text("amount"))],
        ),
        _ => return None,
    };
    Some(WhatsAppMessage {
        to: to.to_string(),
        template,
        parameters,
        // Delivery names the message after its notification.
        callback_data: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn confirmed() -> Value {
        json!({
            "type": "order_confirmed", "orderId": "00000000-0000-0000-0000-000000000001",
            "eventName": "No Te Va Gustar", "totalAmount": "2146.40", "subtotalAmount": "2000",
            "platformCommission": "120", "vatOnCommission": "26.40", "currency": "UYU",
            "items": [{"id": "00000000-0000-0000-0000-0000000000aa", "ticketWaveName": "General", "quantity": 2, "pricePerTicket": "1000", "subtotal": "2000"}]
        })
    }

    #[test]
    fn every_template_parses_and_each_typed_one_renders() {
        let c = Content::new().unwrap();
        let actions =
            json!([{"type": "view_order", "url": "https://app.test/cuenta/entradas?orden=1"}]);
        let e = c
            .email(
                "order_confirmed",
                "ana@example.com",
                &confirmed(),
                Some(&actions),
            )
            .unwrap();
        assert_eq!(
            e.subject,
            "¡Tu compra para No Te Va Gustar está confirmada!"
        );
        assert!(
            e.html.contains("General × 2") && e.html.contains("UYU 2146.40"),
            "{}",
            e.html
        );
        // HTML-escaped by minijinja (`/` becomes `&#x2f;`), which browsers undo in href.
        assert!(
            e.html
                .contains("href=\"https:&#x2f;&#x2f;app.test&#x2f;cuenta&#x2f;entradas?orden=1\""),
            "{}",
            e.html
        );
        assert!(e.text.contains("Total: UYU 2146.40") && !e.text.contains('<'));
        let sold = json!({"type": "ticket_sold_seller", "orderId": "00000000-0000-0000-0000-000000000001", "eventName": "X", "ticketCount": 1});
        assert_eq!(
            c.email("ticket_sold_seller", "b@x", &sold, None)
                .unwrap()
                .subject,
            "Vendiste 1 entrada para X"
        );
    }

    #[test]
    fn metadata_that_does_not_fit_its_type_is_refused_with_the_field() {
        let c = Content::new().unwrap();
        let mut m = confirmed();
        m.as_object_mut().unwrap().remove("eventName");
        let e = c.validate("order_confirmed", &m).unwrap_err();
        assert!(e.contains("missing field `eventName`"), "{e}");
        let e = c.validate("payment_failed", &confirmed()).unwrap_err();
        assert!(e.contains("metadata says type"), "{e}");
        assert!(
            c.email("identity_verification_failed", "a@b", &json!({}), None)
                .unwrap_err()
                .contains("in the app only")
        );
        assert!(
            c.email("party_time", "a@b", &json!({}), None)
                .unwrap_err()
                .contains("no email template for type party_time")
        );
    }

    #[test]
    fn every_emailable_type_validates_and_renders_in_spanish() {
        let c = Content::new().unwrap();
        let id = "00000000-0000-0000-0000-000000000001";
        let samples = [
            json!({"type": "document_reminder", "listingId": id, "eventName": "E", "eventStartDate": "2026-12-01T22:00:00Z", "ticketCount": 2, "hoursUntilEvent": 24}),
            json!({"type": "order_invoice", "orderId": id, "party": "buyer", "eventName": "E", "currency": "UYU", "totalAmount": "10"}),
            json!({"type": "document_uploaded", "orderId": id, "eventName": "E", "ticketCount": 1}),
            json!({"type": "document_uploaded_batch", "orderId": id, "eventName": "E", "uploadedCount": 3, "tickets": [{"ticketNumber": "1", "eventName": "E"}]}),
            json!({"type": "payout_processing", "payoutId": id, "amount": "100", "currency": "UYU"}),
            json!({"type": "payout_completed", "payoutId": id, "amount": "100", "currency": "USD", "completedAt": "2026-11-25T10:00:00Z"}),
            json!({"type": "payout_failed", "payoutId": id, "amount": "100", "currency": "UYU", "failureReason": "cuenta cerrada"}),
            json!({"type": "payout_cancelled", "payoutId": id, "amount": "100", "currency": "UYU", "cancellationReason": "pedido"}),
            json!({"type": "auth_invitation", "expiresInDays": 7, "actionUrl": "https://app.test/i"}),
            json!({"type": "auth_new_device_sign_in", "sessionCreatedAt": "2026-11-25 10:00"}),
            json!({"type": "auth_password_changed", "primaryEmailAddress": "a@b"}),
            json!({"type": "auth_password_removed", "primaryEmailAddress": "a@b"}),
            json!({"type": "auth_primary_email_changed", "newEmailAddress": "n@b"}),
            json!({"type": "auth_reset_password_code", "otpCode": "123456"}),
            json!({"type": "auth_verification_code", "otpCode": "654321"}),
            json!({"type": "identity_verification_completed"}),
            json!({"type": "identity_verification_rejected", "rejectionReason": "foto borrosa", "canRetry": true}),
            json!({"type": "seller_earnings_retained", "eventName": "E", "ticketCount": 2, "reason": "missing_document"}),
            json!({"type": "seller_earnings_available", "lines": [{"currency": "UYU", "amount": "926.80", "earningCount": 1}]}),
            json!({"type": "buyer_ticket_cancelled", "eventName": "E", "ticketCount": 1, "reason": "seller_failed_to_upload"}),
            json!({"type": "ticket_report_created", "ticketReportId": id, "caseType": "other", "reportedByUserId": id, "entityType": "order", "entityId": id}),
            json!({"type": "ticket_report_action_added", "ticketReportId": id, "actionType": "comment", "performedByRole": "admin", "comment": "Hola"}),
            json!({"type": "ticket_report_closed", "ticketReportId": id, "closedByRole": "admin", "refundIssued": true}),
            confirmed(),
            json!({"type": "order_expired", "orderId": id, "eventName": "E"}),
            json!({"type": "payment_failed", "orderId": id, "eventName": "E"}),
            json!({"type": "ticket_sold_seller", "listingId": id, "eventName": "E", "eventStartDate": "x", "ticketCount": 1, "platform": "entraste", "shouldPromptUpload": true}),
        ];
        assert_eq!(samples.len(), 27, "every type the original can email");
        for m in &samples {
            let kind = m["type"].as_str().unwrap();
            c.validate(kind, m)
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            let e = c
                .email(kind, "a@b", m, None)
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert!(
                !e.subject.is_empty() && !e.subject.contains("{{"),
                "{kind}: {}",
                e.subject
            );
            assert!(
                e.html.contains("<html lang=\"es\">") && !e.html.contains("{%"),
                "{kind}"
            );
            assert!(
                !e.text.is_empty() && !e.text.contains('<'),
                "{kind}: {}",
                e.text
            );
        }
        let code = c
            .email("auth_verification_code", "a@b", &samples[14], None)
            .unwrap();
        assert_eq!(code.subject, "Tu código de verificación: 654321");
        let lines = c
            .email("seller_earnings_available", "a@b", &samples[18], None)
            .unwrap();
        assert!(
            lines.text.contains("UYU 926.80 (1 venta)"),
            "{}",
            lines.text
        );
    }

    #[test]
    fn whatsapp_templates_follow_the_original() {
        let m = whatsapp("order_confirmed", "+59899123456", &confirmed()).unwrap();
        assert_eq!(
            (m.template, m.parameters.clone()),
            (
                "revendiste_order_confirmed",
                vec!["No Te Va Gustar".to_string(), "UYU 2146.40".to_string()]
            )
        );
        assert!(whatsapp("payment_failed", "+598", &json!({})).is_none());
    }
}
