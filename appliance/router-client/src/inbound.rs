//! The normalised message the gateway (or any channel) hands the router.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A message's text may be at most this long; longer texts are documents, for ingest.
pub const MAX_TEXT_BYTES: usize = 32 * 1024;
/// Pictures per message, and the size of each once decoded.
pub const MAX_PICTURES: usize = 4;
pub const MAX_PICTURE_BYTES: usize = 5 * 1024 * 1024;
/// The picture formats the vision models read.
pub const PICTURE_TYPES: [&str; 5] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
];

/// Why a message cannot be routed as it is; the router answers `Invalid` with 422 and
/// `TooLarge` with 413.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboundError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the message is {size} bytes; the limit is {limit} (send long texts as a document)")]
    TooLarge { size: usize, limit: usize },
}

fn invalid(field: &'static str, message: impl Into<String>) -> InboundError {
    InboundError::Invalid {
        field,
        message: message.into(),
    }
}

/// PostgreSQL refuses a NUL in text: a message holding one would fail when memory stores it,
/// after the model had answered. Refused up front, naming the field.
fn no_nul(field: &'static str, text: &str) -> Result<(), InboundError> {
    if text.contains('\0') {
        return Err(invalid(field, "must not contain a NUL character"));
    }
    Ok(())
}

/// A picture sent with the message (a Telegram photo): the `describe_image` tool asks the
/// agent's vision model about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Picture {
    /// `image/png`, `image/jpeg`, `image/gif`, `image/webp` or `image/bmp`.
    pub mime: String,
    /// The file, base64-encoded.
    pub data: String,
}

impl Picture {
    /// As an OpenAI `image_url` data URL.
    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.mime, self.data)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    #[default]
    Private,
    Group,
    Public,
}

impl ChatKind {
    /// The policy mode name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatKind::Private => "private",
            ChatKind::Group => "group",
            ChatKind::Public => "public",
        }
    }
}

/// Who sent it: a known DAARION user, or a channel identity (created on first contact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum UserRef {
    Id {
        id: Uuid,
    },
    Identity {
        external_id: String,
        #[serde(default)]
        display_name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inbound {
    /// `telegram`, `web`, `api`…
    pub channel: String,
    /// The bot that received it (routing by bot).
    pub bot: Option<String>,
    /// The channel's chat id; one session per user, agent and chat.
    #[serde(default)]
    pub chat_id: String,
    #[serde(default)]
    pub chat_kind: ChatKind,
    pub user: UserRef,
    pub text: String,
    /// An agent the user chose (`/agent <id>`), overriding the routing table.
    pub agent: Option<String>,
    /// In groups: the bot was mentioned or replied to.
    #[serde(default)]
    pub addressed: bool,
    /// The text is the transcript of a voice message (kept so with the stored message).
    #[serde(default)]
    pub voice: bool,
    /// Pictures that came with the text, for the `describe_image` tool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Picture>,
    /// The sender is the appliance's operator (the root token, an admin token or an admin's
    /// browser session speaking as itself): the router gives its user the `admin` role, so the
    /// operator can talk to any agent they create. Only the router's root-only routes and its
    /// own OpenAI endpoint for admin callers set it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub operator: bool,
}

impl Inbound {
    /// The `/command` the text starts with, without the slash and a `@bot` suffix.
    pub fn command(&self) -> Option<&str> {
        let first = self.text.split_whitespace().next()?;
        let name = first.strip_prefix('/')?;
        let name = name.split('@').next().unwrap_or(name);
        (!name.is_empty()).then_some(name)
    }

    /// `@agent` mentions in the text, in order.
    pub fn mentions(&self) -> impl Iterator<Item = &str> {
        self.text.split_whitespace().filter_map(|w| {
            let name = w.strip_prefix('@')?;
            let name =
                name.trim_end_matches(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'));
            (!name.is_empty()).then_some(name)
        })
    }

    /// The limits both ends hold a message to; the router checks before anything else, a
    /// caller may check before sending.
    pub fn validate(&self) -> Result<(), InboundError> {
        if self.text.len() > MAX_TEXT_BYTES {
            return Err(InboundError::TooLarge {
                size: self.text.len(),
                limit: MAX_TEXT_BYTES,
            });
        }
        if self.text.trim().is_empty() {
            return Err(invalid("text", "the message is empty"));
        }
        no_nul("text", &self.text)?;
        no_nul("chat_id", &self.chat_id)?;
        no_nul("bot", self.bot.as_deref().unwrap_or_default())?;
        no_nul("agent", self.agent.as_deref().unwrap_or_default())?;
        if let UserRef::Identity {
            external_id,
            display_name,
        } = &self.user
        {
            no_nul("user", external_id)?;
            no_nul("user", display_name)?;
        }
        let channel_ok = !self.channel.is_empty()
            && self.channel.len() <= 32
            && self
                .channel
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !channel_ok {
            return Err(invalid(
                "channel",
                "1 to 32 lowercase letters, digits, '_' or '-'",
            ));
        }
        if self.images.len() > MAX_PICTURES {
            return Err(invalid(
                "images",
                format!("at most {MAX_PICTURES} pictures per message"),
            ));
        }
        for (i, picture) in self.images.iter().enumerate() {
            picture.validate(i + 1)?;
        }
        if self.chat_id.len() > 100 {
            return Err(invalid("chat_id", "at most 100 characters"));
        }
        if let UserRef::Identity {
            external_id,
            display_name,
        } = &self.user
            && (external_id.is_empty() || external_id.len() > 128 || display_name.len() > 200)
        {
            return Err(invalid(
                "user",
                "external_id must be 1 to 128 characters, display_name at most 200",
            ));
        }
        Ok(())
    }
}

impl Picture {
    /// `number` counts from 1, as the user would.
    fn validate(&self, number: usize) -> Result<(), InboundError> {
        use base64::Engine;
        if !PICTURE_TYPES.contains(&self.mime.as_str()) {
            return Err(invalid(
                "images",
                format!(
                    "picture {number}: mime must be one of {}",
                    PICTURE_TYPES.join(", ")
                ),
            ));
        }
        // Checked on the encoded length first, so an oversized upload is not decoded at all.
        if self.data.len() > MAX_PICTURE_BYTES.div_ceil(3) * 4 {
            return Err(InboundError::TooLarge {
                size: self.data.len() / 4 * 3,
                limit: MAX_PICTURE_BYTES,
            });
        }
        if base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .is_err()
        {
            return Err(invalid(
                "images",
                format!("picture {number}: data is not base64"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound(text: &str) -> Inbound {
        serde_json::from_value(serde_json::json!({
            "channel": "telegram", "chat_id": "1", "user": {"external_id": "7"}, "text": text
        }))
        .unwrap()
    }

    #[test]
    fn commands_and_mentions() {
        assert_eq!(inbound("/weather@mybot Kyiv").command(), Some("weather"));
        assert_eq!(inbound("hello /weather").command(), None);
        assert_eq!(
            inbound("hi @helper, and @coder!")
                .mentions()
                .collect::<Vec<_>>(),
            ["helper", "coder"]
        );
    }

    #[test]
    fn validation() {
        assert!(inbound("  ").validate().is_err());
        assert!(inbound(&"x".repeat(MAX_TEXT_BYTES + 1)).validate().is_err());
        inbound("hi").validate().unwrap();
        let by_id: Inbound = serde_json::from_value(serde_json::json!({
            "channel": "web", "user": {"id": uuid::Uuid::nil()}, "text": "hi"
        }))
        .unwrap();
        assert!(matches!(by_id.user, UserRef::Id { .. }));
    }

    #[test]
    fn a_nul_anywhere_is_refused_naming_the_field() {
        let refused = |field: &str, value: serde_json::Value| {
            let mut message = serde_json::json!({
                "channel": "telegram", "chat_id": "1", "user": {"external_id": "7"}, "text": "hi"
            });
            message[field] = value;
            let inbound: Inbound = serde_json::from_value(message).unwrap();
            inbound.validate().unwrap_err().to_string()
        };
        let says = |field: &str| format!("{field}: must not contain a NUL character");
        assert_eq!(refused("text", "a\u{0}b".into()), says("text"));
        assert_eq!(refused("chat_id", "1\u{0}".into()), says("chat_id"));
        assert_eq!(refused("bot", "b\u{0}".into()), says("bot"));
        assert_eq!(refused("agent", "\u{0}".into()), says("agent"));
        let user = serde_json::json!({"external_id": "7", "display_name": "A\u{0}"});
        assert_eq!(refused("user", user), says("user"));
    }

    #[test]
    fn pictures_are_checked() {
        let with = |images: serde_json::Value| -> Inbound {
            serde_json::from_value(serde_json::json!({
                "channel": "telegram", "user": {"external_id": "7"}, "text": "look", "images": images
            }))
            .unwrap()
        };
        with(serde_json::json!([{"mime": "image/png", "data": "iVBORw0KGgo="}]))
            .validate()
            .unwrap();
        let bad = [
            (
                serde_json::json!([{"mime": "text/plain", "data": "aGk="}]),
                "mime",
            ),
            (
                serde_json::json!([{"mime": "image/png", "data": "not base64!"}]),
                "base64",
            ),
            (
                serde_json::Value::Array(vec![
                    serde_json::json!({"mime": "image/png", "data": "aGk="});
                    5
                ]),
                "at most",
            ),
        ];
        for (images, says) in bad {
            let e = with(images).validate().unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        let huge = "A".repeat(MAX_PICTURE_BYTES / 3 * 4 + 8);
        assert!(matches!(
            with(serde_json::json!([{"mime": "image/png", "data": huge}])).validate(),
            Err(InboundError::TooLarge { .. })
        ));
    }

    #[test]
    fn what_a_caller_sends_the_router_reads_back() {
        let sent = Inbound {
            channel: "telegram".into(),
            bot: Some("main".into()),
            chat_id: "42".into(),
            chat_kind: ChatKind::Group,
            user: UserRef::Identity {
                external_id: "7".into(),
                display_name: "Ann".into(),
            },
            text: "@helper hi".into(),
            agent: None,
            addressed: true,
            voice: true,
            images: vec![Picture {
                mime: "image/png".into(),
                data: "iVBORw0KGgo=".into(),
            }],
            operator: true,
        };
        let wire = serde_json::to_value(&sent).unwrap();
        assert_eq!(wire["chat_kind"], "group");
        assert_eq!(wire["user"]["external_id"], "7");
        assert_eq!(serde_json::from_value::<Inbound>(wire).unwrap(), sent);
        let by_id = UserRef::Id { id: Uuid::nil() };
        let wire = serde_json::to_value(&by_id).unwrap();
        assert_eq!(serde_json::from_value::<UserRef>(wire).unwrap(), by_id);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_value::<Inbound>(serde_json::json!({
            "channel": "web", "user": {"external_id": "7"}, "text": "hi", "txet": "typo"
        }))
        .unwrap_err();
        assert!(e.to_string().contains("txet"), "{e}");
    }
}
