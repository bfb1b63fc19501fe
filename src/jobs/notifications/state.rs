//! A notification's delivery state, typed: its channels, each channel's state as
//! stored in `channel_status`, and the notification's resulting status.
//!
//! On disk it is the same JSON as before (and as the original's, whose entries lack
//! `attempts`): `{"<channel>": {"status": "sent" | "failed" | "retry" | "sending", ...}}`.
//! A channel or a status this code does not know is a decode error naming the row,
//! never a guess: guessing "not sent" could send twice, guessing "sent" could lose a
//! message.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(super) use crate::notify::Channel;

/// One channel's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "status",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub(super) enum ChannelState {
    /// Delivered; never sent again.
    Sent {
        #[serde(default)]
        attempts: u32,
        #[serde(default, with = "iso_opt", skip_serializing_if = "Option::is_none")]
        sent_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_id: Option<String>,
        /// `receipt` when a delivery receipt, not the send's answer, said so.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confirmed_by: Option<String>,
        /// In-app only: the web pushes that did not go out, and why (an endpoint the
        /// egress guard refused, a push service's refusal). Absent when all went out.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        push: Option<String>,
    },
    /// Given up; never sent again.
    Failed {
        #[serde(default)]
        attempts: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Failed for now; tried again from `retry_at`.
    Retry {
        attempts: u32,
        error: String,
        #[serde(with = "iso")]
        retry_at: DateTime<Utc>,
    },
    /// Marked before a send that cannot be repeated safely; its outcome is unknown until
    /// a receipt says, or `retry_at` passes without one.
    Sending {
        attempts: u32,
        /// When the request left; absent in marks older than the receipts.
        #[serde(default, with = "iso_opt", skip_serializing_if = "Option::is_none")]
        since: Option<DateTime<Utc>>,
        #[serde(default, with = "iso_opt", skip_serializing_if = "Option::is_none")]
        retry_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

impl ChannelState {
    pub(super) fn failed(attempts: u32, reason: String) -> ChannelState {
        ChannelState::Failed {
            attempts,
            error: Some(reason),
        }
    }

    pub(super) fn attempts(&self) -> u32 {
        match self {
            ChannelState::Sent { attempts, .. }
            | ChannelState::Failed { attempts, .. }
            | ChannelState::Retry { attempts, .. }
            | ChannelState::Sending { attempts, .. } => *attempts,
        }
    }

    /// Sent or failed: nothing more to do.
    pub(super) fn is_final(&self) -> bool {
        matches!(
            self,
            ChannelState::Sent { .. } | ChannelState::Failed { .. }
        )
    }

    /// When a waiting channel (retry, or sending without a receipt yet) is due again.
    pub(super) fn due_at(&self) -> Option<DateTime<Utc>> {
        match self {
            ChannelState::Retry { retry_at, .. } => Some(*retry_at),
            ChannelState::Sending { retry_at, .. } => *retry_at,
            ChannelState::Sent { .. } | ChannelState::Failed { .. } => None,
        }
    }

    pub(super) fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Every channel's state of one notification.
pub(super) type Channels = BTreeMap<Channel, ChannelState>;

/// A row's `channels` and `channel_status`, or why they cannot be read.
pub(super) fn decode(
    id: uuid::Uuid,
    channels: &[String],
    status: Option<&Value>,
) -> Result<(Vec<Channel>, Channels), String> {
    let listed = channels
        .iter()
        .map(|c| {
            Channel::parse(c).ok_or_else(|| format!("notification {id}: unknown channel `{c}`"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let states = match status {
        None | Some(Value::Null) => Channels::new(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| format!("notification {id}: channel_status unreadable: {e}"))?,
    };
    Ok((listed, states))
}

pub(super) fn encode(states: &Channels) -> Value {
    serde_json::to_value(states).unwrap_or(Value::Null)
}

/// A notification's status (the `notification_status` values this job writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Delivery {
    /// A channel waits for a retry or a receipt.
    Pending,
    /// At least one channel got through (the original's partial success).
    Sent,
    /// No channel got through.
    Failed,
}

/// Instants as the original wrote them: RFC 3339, milliseconds, `Z`.
mod iso {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.to_utc())
            .map_err(|e| serde::de::Error::custom(format!("`{text}`: {e}")))
    }
}

mod iso_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        t: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::iso::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapped(#[serde(with = "super::iso")] DateTime<Utc>);
        Ok(Option::<Wrapped>::deserialize(d)?.map(|Wrapped(t)| t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_stored_json_reads_and_writes_back_unchanged() {
        let stored = json!({
            (Channel::Email.as_str()): {"status": "sent", "attempts": 2, "sentAt": "2026-11-30T12:00:00.123Z",
                      "providerId": "re_1"},
            (Channel::Whatsapp.as_str()): {"status": "sending", "attempts": 1, "since": "2026-11-30T12:00:00.000Z",
                         "retryAt": "2026-11-30T12:05:16.000Z", "error": "timed out"},
            (Channel::InApp.as_str()): {"status": "retry", "attempts": 1, "error": "x",
                       "retryAt": "2026-11-30T12:01:00.000Z"},
        });
        let channels: Vec<String> = [Channel::Email, Channel::Whatsapp, Channel::InApp]
            .iter()
            .map(|c| c.as_str().to_string())
            .collect();
        let (listed, states) = decode(uuid::Uuid::nil(), &channels, Some(&stored)).unwrap();
        assert_eq!(listed, [Channel::Email, Channel::Whatsapp, Channel::InApp]);
        assert_eq!(encode(&states), stored);
    }

    #[test]
    fn the_originals_entries_without_attempts_are_read() {
        let stored = json!({(Channel::Email.as_str()): {"status": "sent", "sentAt": "2026-01-01T00:00:00.000Z"},
                            (Channel::Whatsapp.as_str()): {"status": "failed", "error": "no phone"}});
        let (_, states) = decode(uuid::Uuid::nil(), &[], Some(&stored)).unwrap();
        assert!(states[&Channel::Email].is_final());
        assert_eq!(states[&Channel::Whatsapp].attempts(), 0);
    }

    #[test]
    fn an_unknown_status_or_channel_is_an_error_naming_the_row() {
        let id = uuid::Uuid::from_u128(7);
        let e = decode(
            id,
            &[],
            Some(&json!({(Channel::Email.as_str()): {"status": "queued"}})),
        )
        .unwrap_err();
        assert!(
            e.starts_with(&format!("notification {id}: channel_status unreadable")),
            "{e}"
        );
        assert!(e.contains("queued"), "{e}");
        let e = decode(id, &[], Some(&json!({"fax": {"status": "sent"}}))).unwrap_err();
        assert!(e.contains("fax"), "{e}");
        let e = decode(id, &["fax".into()], None).unwrap_err();
        assert_eq!(e, format!("notification {id}: unknown channel `fax`"));
    }
}
