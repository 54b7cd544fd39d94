//! Telegram updates, read from their JSON as sent (so an update kind this build does not know is
//! logged and skipped instead of failing to parse), normalised into what the gateway acts on.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chat {
    pub id: i64,
    pub group: bool,
}

/// The gateway's own commands; every other `/command` goes to the router, which may route on it.
pub const COMMANDS: [&str; 9] = [
    "start", "help", "new", "reset", "agent", "status", "voice", "runs", "cancel",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Something to answer.
    Text {
        chat: Chat,
        from: Sender,
        text: String,
        /// In a group: the bot was mentioned, replied to, or given a command.
        addressed: bool,
        /// The user edited an earlier message; it is answered as a new one.
        edited: bool,
    },
    /// A voice message or audio file, to be transcribed and then answered like text.
    Voice {
        chat: Chat,
        from: Sender,
        file_id: String,
    },
    /// A photo, to be described by the vision model and then answered with its caption.
    Photo {
        chat: Chat,
        from: Sender,
        /// The largest size Telegram offers.
        file_id: String,
        caption: Option<String>,
    },
    /// One of [`COMMANDS`].
    Command {
        chat: Chat,
        from: Sender,
        name: String,
        args: String,
    },
    /// A file to keep and read (a document, an audio file, a video, a video message, or a photo
    /// the user asked to remember): handed to the ingest service ([`crate::attachments`]).
    File {
        chat: Chat,
        from: Sender,
        file_id: String,
        /// As the user named it, or made up from the kind and the message (`photo-12.jpg`).
        name: String,
        /// As the update says; Telegram's limit for bots is checked against it before any
        /// download.
        size: Option<u64>,
        kind: FileKind,
        caption: Option<String>,
        /// The user's message carrying the file (the outcome is sent as a reply to it).
        message_id: i64,
    },
    /// A kind of message this build cannot take yet; the user is told so.
    Unsupported {
        chat: Chat,
        from: Sender,
        what: &'static str,
    },
    /// Nothing to do; the reason is logged.
    Ignore(String),
}

/// What a [`Incoming::File`] came as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Document,
    Audio,
    Video,
    VideoNote,
    Photo,
}

impl FileKind {
    /// In a sentence: "Sorry, I cannot take documents yet".
    pub fn plural(self) -> &'static str {
        match self {
            FileKind::Document => "documents",
            FileKind::Audio => "audio files",
            FileKind::Video => "videos",
            FileKind::VideoNote => "video messages",
            FileKind::Photo => "photos",
        }
    }
}

/// A caption asking to keep a photo (rather than to look at it now), in the languages the
/// appliance's users write: a word starting with one of these.
const REMEMBER: [&str; 6] = [
    "remember",
    "save",
    "запам'ятай",
    "запамʼятай",
    "запомни",
    "збережи",
];

/// The caption asks to keep the photo ("remember this", "запам'ятай", "Запомни это").
pub fn asks_to_remember(caption: &str) -> bool {
    caption
        .to_lowercase()
        .replace('’', "'")
        .split(|c: char| c.is_whitespace() || ",.!?:;()".contains(c))
        .any(|w| REMEMBER.iter().any(|r| w.starts_with(r)))
}

/// The queue an update belongs to: its chat, so one chat's messages are answered in order.
pub fn chat_key(update: &Value) -> String {
    [
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "callback_query",
    ]
    .iter()
    .find_map(|k| {
        let m = &update[k];
        m["chat"]["id"]
            .as_i64()
            .or(m["message"]["chat"]["id"].as_i64())
    })
    .map_or_else(
        || format!("update:{}", update["update_id"]),
        |id| id.to_string(),
    )
}

/// Telegram text without NUL characters. Stripped, not refused: a Telegram user cannot be
/// answered a 422, a NUL means nothing in a chat, and PostgreSQL refuses it in text (the
/// router would refuse the whole message, the memory service fail to store it).
fn without_nul(text: &str) -> String {
    text.replace('\0', "")
}

fn sender(from: &Value) -> Option<Sender> {
    let id = from["id"].as_i64()?;
    let first = from["first_name"].as_str().unwrap_or_default();
    let name = match from["last_name"].as_str() {
        Some(last) => format!("{first} {last}"),
        None => first.to_owned(),
    };
    Some(Sender {
        id,
        name: without_nul(&name),
    })
}

fn mentions(text: &str, username: &str) -> bool {
    let handle = format!("@{}", username.to_lowercase());
    text.to_lowercase()
        .split(|c: char| c.is_whitespace() || ",.!?:;()".contains(c))
        .any(|w| w == handle)
}

fn strip_mention(text: &str, username: &str) -> String {
    let handle = format!("@{}", username.to_lowercase());
    text.split(' ')
        .filter(|w| {
            w.to_lowercase()
                .trim_end_matches(|c: char| ",.!?:;".contains(c))
                != handle
        })
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

/// Reads one update; `username` is the bot's own (for mentions and `/cmd@bot`).
pub fn normalise(update: &Value, username: &str) -> Incoming {
    let (message, edited) = if update["message"].is_object() {
        (&update["message"], false)
    } else if update["edited_message"].is_object() {
        (&update["edited_message"], true)
    } else {
        let kind = update
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "update_id").cloned())
            .unwrap_or_else(|| "empty".into());
        return Incoming::Ignore(format!("update kind `{kind}` is not handled"));
    };
    let Some(from) = sender(&message["from"]) else {
        return Incoming::Ignore("message without a sender".into());
    };
    if message["from"]["is_bot"] == true {
        return Incoming::Ignore("message from a bot".into());
    }
    let chat = match (
        message["chat"]["id"].as_i64(),
        message["chat"]["type"].as_str(),
    ) {
        (Some(id), Some("private")) => Chat { id, group: false },
        (Some(id), Some("group" | "supergroup")) => Chat { id, group: true },
        (_, kind) => return Incoming::Ignore(format!("chat type {kind:?} is not handled")),
    };
    let replied_to_bot = message["reply_to_message"]["from"]["username"]
        .as_str()
        .is_some_and(|u| u.eq_ignore_ascii_case(username));
    let text = message["text"]
        .as_str()
        .or(message["caption"].as_str())
        .map(without_nul)
        .filter(|t| !t.is_empty());

    let addressed_media =
        !chat.group || replied_to_bot || text.as_deref().is_some_and(|t| mentions(t, username));
    if let Some(file_id) = message["voice"]["file_id"].as_str() {
        return if addressed_media {
            Incoming::Voice {
                chat,
                from,
                file_id: file_id.to_owned(),
            }
        } else {
            Incoming::Ignore("voice in a group, not addressed".into())
        };
    }
    let message_id = message["message_id"].as_i64().unwrap_or_default();
    let caption = text
        .as_deref()
        .map(|t| strip_mention(t, username))
        .filter(|t| !t.is_empty());
    // Telegram lists a photo's sizes smallest first.
    if let Some(largest) = message["photo"].as_array().and_then(|sizes| sizes.last())
        && let Some(file_id) = largest["file_id"].as_str()
    {
        if !addressed_media {
            return Incoming::Ignore("photo in a group, not addressed".into());
        }
        if caption.as_deref().is_some_and(asks_to_remember) {
            return Incoming::File {
                chat,
                from,
                file_id: file_id.to_owned(),
                name: format!("photo-{message_id}.jpg"),
                size: largest["file_size"].as_u64(),
                kind: FileKind::Photo,
                caption,
                message_id,
            };
        }
        return Incoming::Photo {
            chat,
            from,
            file_id: file_id.to_owned(),
            caption,
        };
    }
    let files = [
        ("document", FileKind::Document, "document", "bin"),
        ("audio", FileKind::Audio, "audio", "mp3"),
        ("video", FileKind::Video, "video", "mp4"),
        ("video_note", FileKind::VideoNote, "video-message", "mp4"),
    ];
    if let Some((key, kind, stem, ext)) = files.iter().find(|(k, ..)| message[*k].is_object()) {
        let file = &message[*key];
        let Some(file_id) = file["file_id"].as_str() else {
            return Incoming::Ignore(format!("{key} without a file id"));
        };
        if !addressed_media {
            return Incoming::Ignore(format!("{} in a group, not addressed", kind.plural()));
        }
        let name = file["file_name"]
            .as_str()
            .map(without_nul)
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{stem}-{message_id}.{ext}"));
        return Incoming::File {
            chat,
            from,
            file_id: file_id.to_owned(),
            name,
            size: file["file_size"].as_u64(),
            kind: *kind,
            caption,
            message_id,
        };
    }
    let text = if let Some(text) = text {
        text
    } else if let (Some(lat), Some(lon)) = (
        message["location"]["latitude"].as_f64(),
        message["location"]["longitude"].as_f64(),
    ) {
        format!("[shared location: latitude {lat}, longitude {lon}]")
    } else if let Some(phone) = message["contact"]["phone_number"].as_str() {
        let name = message["contact"]["first_name"]
            .as_str()
            .unwrap_or_default();
        without_nul(&format!("[shared contact: {name}, {phone}]"))
    } else {
        return Incoming::Ignore("message without text".into());
    };

    if let Some(command) = text.strip_prefix('/') {
        let (head, args) = command
            .split_once(char::is_whitespace)
            .unwrap_or((command, ""));
        let (name, target) = head.split_once('@').unwrap_or((head, ""));
        if !target.is_empty() && !target.eq_ignore_ascii_case(username) {
            return Incoming::Ignore(format!("command for @{target}"));
        }
        if COMMANDS.contains(&name.to_lowercase().as_str()) {
            return Incoming::Command {
                chat,
                from,
                name: name.to_lowercase(),
                args: args.trim().to_owned(),
            };
        }
        // Another command: the router may route on it.
        return Incoming::Text {
            chat,
            from,
            text,
            addressed: true,
            edited,
        };
    }
    let addressed = !chat.group || replied_to_bot || mentions(&text, username);
    Incoming::Text {
        chat,
        from,
        text: if chat.group {
            strip_mention(&text, username)
        } else {
            text
        },
        addressed,
        edited,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(chat_type: &str, extra: Value) -> Value {
        let mut m = json!({"message_id": 1, "date": 0,
            "from": {"id": 7, "is_bot": false, "first_name": "Ann", "last_name": "Lee"},
            "chat": {"id": -100, "type": chat_type}});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"update_id": 1, "message": m})
    }

    #[test]
    fn nul_characters_are_stripped_from_text_captions_and_names() {
        let from = json!({"id": 7, "first_name": "A\u{0}nn", "last_name": "L\u{0}"});
        let update = json!({"update_id": 1, "message": {"message_id": 1, "date": 0,
            "chat": {"id": 1, "type": "private"}, "from": from, "text": "he\u{0}llo"}});
        match normalise(&update, "bot") {
            Incoming::Text { text, from, .. } => {
                assert_eq!(text, "hello");
                assert_eq!(from.name, "Ann L");
            }
            other => panic!("{other:?}"),
        }
        let only_nul = json!({"update_id": 2, "message": {"message_id": 2, "date": 0,
            "chat": {"id": 1, "type": "private"}, "from": {"id": 7}, "text": "\u{0}"}});
        assert!(matches!(normalise(&only_nul, "bot"), Incoming::Ignore(_)));
        let photo = json!({"update_id": 3, "message": {"message_id": 3, "date": 0,
            "chat": {"id": 1, "type": "private"}, "from": {"id": 7},
            "photo": [{"file_id": "p"}], "caption": "c\u{0}at"}});
        match normalise(&photo, "bot") {
            Incoming::Photo { caption, .. } => assert_eq!(caption.as_deref(), Some("cat")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn private_text_and_commands() {
        match normalise(&msg("private", json!({"text": "hello"})), "bot") {
            Incoming::Text {
                text,
                addressed,
                from,
                ..
            } => {
                assert_eq!(text, "hello");
                assert!(addressed);
                assert_eq!(from.name, "Ann Lee");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            normalise(&msg("private", json!({"text": "/agent coder"})), "bot"),
            Incoming::Command { name, args, .. } if name == "agent" && args == "coder"
        ));
        assert!(matches!(
            normalise(&msg("private", json!({"text": "/weather Kyiv"})), "bot"),
            Incoming::Text { .. }
        ));
        assert!(matches!(
            normalise(&msg("group", json!({"text": "/help@otherbot"})), "bot"),
            Incoming::Ignore(_)
        ));
    }

    #[test]
    fn groups_need_addressing() {
        let plain = normalise(&msg("supergroup", json!({"text": "hi all"})), "MyBot");
        assert!(matches!(
            plain,
            Incoming::Text {
                addressed: false,
                ..
            }
        ));
        match normalise(
            &msg("group", json!({"text": "@mybot what time is it?"})),
            "MyBot",
        ) {
            Incoming::Text {
                addressed, text, ..
            } => {
                assert!(addressed);
                assert_eq!(text, "what time is it?");
            }
            other => panic!("{other:?}"),
        }
        let reply = msg(
            "group",
            json!({"text": "and now?", "reply_to_message": {"from": {"username": "mybot"}}}),
        );
        assert!(matches!(
            normalise(&reply, "MyBot"),
            Incoming::Text {
                addressed: true,
                ..
            }
        ));
    }

    #[test]
    fn media_locations_and_unknown_kinds() {
        assert!(matches!(
            normalise(
                &msg("private", json!({"voice": {"file_id": "x", "duration": 2}})),
                "bot"
            ),
            Incoming::Voice { file_id, .. } if file_id == "x"
        ));
        assert!(matches!(
            normalise(
                &msg("group", json!({"voice": {"file_id": "x", "duration": 2}})),
                "bot"
            ),
            Incoming::Ignore(_)
        ));
        assert!(matches!(
            normalise(&msg("group", json!({"photo": [{"file_id": "x"}]})), "bot"),
            Incoming::Ignore(_)
        ));
        match normalise(
            &msg(
                "private",
                json!({"photo": [{"file_id": "small"}, {"file_id": "large"}], "caption": "what is it?"}),
            ),
            "bot",
        ) {
            Incoming::Photo {
                file_id, caption, ..
            } => {
                assert_eq!(file_id, "large");
                assert_eq!(caption.as_deref(), Some("what is it?"));
            }
            other => panic!("{other:?}"),
        }
        match normalise(
            &msg(
                "private",
                json!({"location": {"latitude": 50.45, "longitude": 30.52}}),
            ),
            "bot",
        ) {
            Incoming::Text { text, .. } => assert!(text.contains("50.45")),
            other => panic!("{other:?}"),
        }
        let edited = json!({"update_id": 3, "edited_message": {"message_id": 1, "date": 0, "text": "fixed",
            "from": {"id": 7, "is_bot": false, "first_name": "Ann"}, "chat": {"id": 7, "type": "private"}}});
        assert!(matches!(
            normalise(&edited, "bot"),
            Incoming::Text { edited: true, .. }
        ));
        let poll = json!({"update_id": 4, "poll": {"id": "1"}});
        assert_eq!(
            normalise(&poll, "bot"),
            Incoming::Ignore("update kind `poll` is not handled".into())
        );
        assert_eq!(chat_key(&poll), "update:4");
        assert_eq!(chat_key(&edited), "7");
    }

    fn file_of(update: &Value) -> (String, Option<u64>, FileKind, Option<String>, i64) {
        match normalise(update, "bot") {
            Incoming::File {
                name,
                size,
                kind,
                caption,
                message_id,
                file_id,
                ..
            } => {
                assert_eq!(file_id, "f");
                (name, size, kind, caption, message_id)
            }
            other => panic!("{update}: {other:?}"),
        }
    }

    #[test]
    fn documents_recordings_videos_and_photos_to_remember_are_files() {
        let f = json!({"file_id": "f", "file_unique_id": "u"});
        let named = json!({"file_id": "f", "file_name": "report.pdf", "file_size": 1234});
        for (extra, name, size, kind, caption) in [
            (
                json!({"document": named}),
                "report.pdf",
                Some(1234),
                FileKind::Document,
                None,
            ),
            (
                json!({"document": f, "caption": "for later"}),
                "document-1.bin",
                None,
                FileKind::Document,
                Some("for later"),
            ),
            (
                json!({"audio": f}),
                "audio-1.mp3",
                None,
                FileKind::Audio,
                None,
            ),
            (
                json!({"video": named}),
                "report.pdf",
                Some(1234),
                FileKind::Video,
                None,
            ),
            (
                json!({"video_note": f}),
                "video-message-1.mp4",
                None,
                FileKind::VideoNote,
                None,
            ),
            (
                json!({"photo": [{"file_id": "s"}, {"file_id": "f", "file_size": 99}], "caption": "Remember this"}),
                "photo-1.jpg",
                Some(99),
                FileKind::Photo,
                Some("Remember this"),
            ),
            (
                json!({"photo": [{"file_id": "f"}], "caption": "Запам’ятай, будь ласка"}),
                "photo-1.jpg",
                None,
                FileKind::Photo,
                Some("Запам’ятай, будь ласка"),
            ),
            (
                json!({"photo": [{"file_id": "f"}], "caption": "запомни"}),
                "photo-1.jpg",
                None,
                FileKind::Photo,
                Some("запомни"),
            ),
        ] {
            assert_eq!(
                file_of(&msg("private", extra.clone())),
                (name.to_owned(), size, kind, caption.map(str::to_owned), 1),
                "{extra}"
            );
        }
    }

    #[test]
    fn voice_notes_plain_photos_and_unaddressed_files_keep_their_ways() {
        assert!(matches!(
            normalise(&msg("private", json!({"voice": {"file_id": "v"}})), "bot"),
            Incoming::Voice { .. }
        ));
        assert!(matches!(
            normalise(
                &msg(
                    "private",
                    json!({"photo": [{"file_id": "p"}], "caption": "what is this?"})
                ),
                "bot"
            ),
            Incoming::Photo { .. }
        ));
        assert!(matches!(
            normalise(&msg("group", json!({"document": {"file_id": "d"}})), "bot"),
            Incoming::Ignore(_)
        ));
        assert!(matches!(
            normalise(
                &msg("group", json!({"document": {"file_id": "f"}, "caption": "@bot keep it"})),
                "bot"
            ),
            Incoming::File { caption: Some(c), .. } if c == "keep it"
        ));
        for (caption, remember) in [
            ("remember", true),
            ("Please REMEMBER this!", true),
            ("запам'ятай", true),
            ("Запомни это", true),
            ("what do you see?", false),
            ("remembrance", false),
            ("", false),
        ] {
            assert_eq!(asks_to_remember(caption), remember, "{caption}");
        }
    }
}
