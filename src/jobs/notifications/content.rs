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
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::providers::{Email, WhatsAppMessage};

static TEMPLATES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates/email");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // fields are read by the templates; deserializing checks them
struct Item {
    ticket_wave_name: String,
    quantity: u32,
    subtotal: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct OrderConfirmed {
    order_id: Uuid,
    event_name: String,
    total_amount: String,
    platform_commission: String,
    vat_on_commission: String,
    currency: String,
    items: Vec<Item>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct TicketSold {
    order_id: Uuid,
    event_name: String,
    ticket_count: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct OrderEvent {
    order_id: Uuid,
    event_name: String,
}

/// Renders emails; built once per run.
pub struct Content {
    env: Environment<'static>,
}

fn check<T: for<'de> Deserialize<'de>>(kind: &str, metadata: &Value) -> Result<(), String> {
    serde_json::from_value::<T>(metadata.clone())
        .map(|_| ())
        .map_err(|e| format!("metadata does not fit type {kind}: {e}"))
}

impl Content {
    pub fn new() -> Result<Content, String> {
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

    /// Checks `metadata` against the notification's type. Types we know nothing about
    /// pass here; their email channel fails for want of a template.
    pub fn validate(&self, kind: &str, metadata: &Value) -> Result<(), String> {
        if metadata
            .get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t != kind)
        {
            return Err(format!(
                "metadata says type {}, the notification is {kind}",
                metadata["type"]
            ));
        }
        match kind {
            "order_confirmed" => check::<OrderConfirmed>(kind, metadata),
            "ticket_sold_seller" => check::<TicketSold>(kind, metadata),
            "payment_failed" | "order_expired" => check::<OrderEvent>(kind, metadata),
            _ => Ok(()),
        }
    }

    /// Subject, HTML and text of the email for this notification.
    pub fn email(
        &self,
        kind: &str,
        to: &str,
        metadata: &Value,
        actions: Option<&Value>,
    ) -> Result<Email, String> {
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
        })
    }
}

/// The WhatsApp template for a type, with its parameters in order (original-jobs.md
/// 2.4). `None`: the type has no template, which the original records as sent.
pub fn whatsapp(kind: &str, to: &str, m: &Value) -> Option<WhatsAppMessage> {
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
            "items": [{"ticketWaveName": "General", "quantity": 2, "pricePerTicket": "1000", "subtotal": "2000"}]
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
            c.email("auth_invitation", "a@b", &json!({}), None)
                .unwrap_err()
                .contains("no email template for type auth_invitation")
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
