//! The delivery channels (the `notification_channel` type), as every job names them.

use serde::{Deserialize, Serialize};

/// A delivery channel (the `notification_channel` type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Channel {
    InApp,
    Email,
    /// In the schema, never sent (the original had no SMS provider either): failed
    /// as not supported, while the notification's other channels go out.
    Sms,
    Whatsapp,
}

impl Channel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Channel::InApp => "in_app",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Channel> {
        [
            Channel::InApp,
            Channel::Email,
            Channel::Sms,
            Channel::Whatsapp,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }
}
