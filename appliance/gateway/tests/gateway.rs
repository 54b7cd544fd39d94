//! The gateway with the real teloxide client against a local server speaking the Telegram Bot
//! API, real update JSON posted to the webhook, and behind it the real router, memory, control
//! plane, PostgreSQL, Redis and NATS (and the real swapper with SmolLM2 where named).

mod helpers;

use std::time::Duration;

use daarion_bus::events::MessageSent;
use daarion_llm::testing::{Fake, Reply, openai_answer, sse};
use helpers::{Credential, Gateway, text_update};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn a_text_message_is_answered_by_smollm2_through_router_and_swapper() {
    let gw = Gateway::start(true, None).await;
    gw.stack
        .agent(
            "a",
            "You are a concise assistant. Answer in one sentence.",
            Some(json!({"models": ["local/smollm2"], "max_tokens": 24, "tools": [], "temperature": 0.0})),
            None,
        )
        .await;
    gw.stack
        .config("routing.main", json!({"default_agent": "a"}))
        .await;
    let (status, body) = gw
        .post(&text_update(
            501,
            77,
            "What is the capital of France?",
            false,
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    gw.until("the final answer", |t| {
        t.shown(501)
            .iter()
            .any(|s| s.contains("Paris") && !s.ends_with('…'))
    })
    .await;
    assert!(
        !gw.telegram.calls("sendChatAction").is_empty(),
        "typing was shown"
    );
    gw.stop().await;
}

#[tokio::test]
async fn text_is_answered_streamed_by_edits_and_announced() {
    let gw = Gateway::start(false, Some("a")).await;
    let fake = gw.stack.fake().await;
    fake.always(Reply::Stream {
        chunks: sse(&[
            json!({"choices": [{"index": 0, "delta": {"content": "Hello "}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "there, "}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "Ann!"}}]}),
            json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3}}),
        ]),
        gap: Duration::from_millis(80),
        stall: false,
    });
    let nats = async_nats::connect(&gw.stack.plane.config.bus.url)
        .await
        .unwrap();
    let prefix = gw.stack.plane.config.bus.prefix.clone();
    let mut sent = nats
        .subscribe(format!("{prefix}.message.sent.telegram"))
        .await
        .unwrap();
    nats.flush().await.unwrap();

    let (status, _) = gw.post(&text_update(10, 7, "hi", false)).await;
    assert_eq!(status, 200);
    gw.until("the final answer", |t| t.shown(10) == ["Hello there, Ann!"])
        .await;
    assert!(
        !gw.telegram.calls("editMessageText").is_empty(),
        "the answer grew by edits: {:?}",
        gw.telegram.texts()
    );
    assert!(
        gw.telegram.texts()[0].ends_with('…'),
        "partial text is marked"
    );
    let event = tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut sent))
        .await
        .unwrap()
        .unwrap();
    let typed = daarion_bus::decode::<MessageSent>(&event.payload).unwrap();
    assert_eq!(typed.event_type, "message.sent.telegram");
    assert_eq!(typed.payload.bot, "mainbot");
    assert!(!typed.payload.telegram_message_ids.is_empty());
    assert!(
        typed.payload.message_id.is_some(),
        "the stored answer is named"
    );
    assert!(typed.payload.router_trace_id.is_some());
    let event: Value = serde_json::from_slice(&event.payload).unwrap();
    assert_eq!(event["payload"]["chat_id"], 10);
    assert_eq!(event["payload"]["agent"], "a");
    // The router got the Telegram identity and stored the turn under it.
    let sent_to_model = fake.bodies();
    assert!(sent_to_model[0]["messages"].to_string().contains("hi"));
    gw.stop().await;
}

#[tokio::test]
async fn a_wrong_secret_is_refused_and_nothing_is_processed() {
    let gw = Gateway::start(false, Some("a")).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("never"));
    let update = serde_json::to_vec(&text_update(11, 7, "hi", false)).unwrap();
    let (status, body) = gw.post_raw(update.clone(), Some("wrong")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = gw.post_raw(update, None).await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(gw.telegram.texts().is_empty());
    assert_eq!(fake.count(), 0);
    let r = gw
        .stack
        .http
        .post(format!("{}/telegram/nobot/webhook", gw.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    gw.stop().await;
}

#[tokio::test]
async fn five_messages_in_one_chat_are_answered_in_order_and_chats_in_parallel() {
    let gw = Gateway::start(false, Some("a")).await;
    let fake = gw.stack.fake().await;
    // The first answer streams slowly: a start, then 20 s of empty chunks (each within the
    // provider's 2 s stall limit), then its end. Another chat is answered inside that window.
    let mut slow = vec![
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Let me think"}}]}),
    ];
    slow.extend((0..50).map(|_| json!({"choices": [{"index": 0, "delta": {}}]})));
    slow.push(
        json!({"choices": [{"index": 0, "delta": {"content": " ok"}, "finish_reason": "stop"}]}),
    );
    fake.then(Reply::Stream {
        chunks: sse(&slow),
        gap: Duration::from_millis(400),
        stall: false,
    });
    fake.always(openai_answer("ok"));
    let (status, _) = gw.post(&text_update(20, 7, "question 0", false)).await;
    assert_eq!(status, 200);
    gw.until("the first answer under way", |t| {
        t.shown(20).iter().any(|m| m.starts_with("Let me think"))
    })
    .await;
    for i in 1..5 {
        let (status, _) = gw
            .post(&text_update(20, 7, &format!("question {i}"), false))
            .await;
        assert_eq!(status, 200);
    }
    let (status, _) = gw.post(&text_update(21, 8, "another chat", false)).await;
    assert_eq!(status, 200);
    gw.until("the other chat's answer", |t| {
        t.shown(21).iter().any(|m| m == "ok")
    })
    .await;
    // Overlap in time: chat 21 was answered while chat 20's first answer was still streaming.
    let first = gw.telegram.shown(20);
    assert!(
        first.len() == 1 && first[0].ends_with('…'),
        "chat 21 waited for chat 20: {first:?}"
    );
    gw.until("six answers", |t| {
        t.shown(20).len() == 5 && t.shown(21).len() == 1
    })
    .await;
    assert_eq!(gw.telegram.shown(20)[0], "Let me think ok");
    let questions: Vec<String> = fake
        .bodies()
        .iter()
        .map(|b| {
            b["messages"].as_array().unwrap().last().unwrap()["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .filter(|q| q.starts_with("question"))
        .collect();
    assert_eq!(
        questions,
        [
            "question 0",
            "question 1",
            "question 2",
            "question 3",
            "question 4"
        ]
    );
    // Each question saw the answers before it: the history grows by two each time.
    let lengths: Vec<usize> = fake
        .bodies()
        .iter()
        .filter(|b| b["messages"].to_string().contains("question"))
        .map(|b| b["messages"].as_array().unwrap().len())
        .collect();
    assert_eq!(lengths, [2, 4, 6, 8, 10]);
    gw.stop().await;
}

#[tokio::test]
async fn flood_control_on_an_edit_is_honoured_and_a_long_answer_is_split() {
    let gw = Gateway::start(false, Some("a")).await;
    let fake = gw.stack.fake().await;
    let long: String = (0..300)
        .map(|i| format!("Sentence number {i} of a long answer. "))
        .collect();
    assert!(long.len() > 10_000);
    let pieces: Vec<Value> = long
        .as_bytes()
        .chunks(2000)
        .map(|c| json!({"choices": [{"index": 0, "delta": {"content": String::from_utf8_lossy(c)}}]}))
        .chain([json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})])
        .collect();
    fake.always(Reply::Stream {
        chunks: sse(&pieces),
        gap: Duration::from_millis(120),
        stall: false,
    });
    gw.telegram.flood_once("editMessageText", 1);
    let (status, _) = gw.post(&text_update(30, 7, "tell me a lot", false)).await;
    assert_eq!(status, 200);
    gw.until("the whole answer", |t| t.shown(30).concat() == long)
        .await;
    let shown = gw.telegram.shown(30);
    assert!(shown.len() >= 3, "{} messages", shown.len());
    assert!(shown.iter().all(|m| m.chars().count() <= 4096));
    let refused = gw.telegram.calls("editMessageText:429");
    assert_eq!(refused.len(), 1);
    let next_edit = gw
        .telegram
        .calls("editMessageText")
        .into_iter()
        .find(|c| c.at > refused[0].at)
        .expect("edits resumed");
    assert!(
        next_edit.at - refused[0].at >= Duration::from_millis(950),
        "waited retry_after"
    );
    gw.stop().await;
}

#[tokio::test]
async fn groups_duplicates_commands_and_bad_input() {
    let gw = Gateway::start(false, Some("a")).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("answer"));
    gw.stack.agent("coder", "You are coder.", None, None).await;

    // A group message not addressed to the bot is ignored; one that mentions it is answered.
    let (status, _) = gw.post(&text_update(-40, 7, "just chatting", true)).await;
    assert_eq!(status, 200);
    let (status, _) = gw
        .post(&text_update(-40, 7, "@test_bot what is up?", true))
        .await;
    assert_eq!(status, 200);
    gw.until("the group answer", |t| t.shown(-40) == ["answer"])
        .await;
    assert_eq!(
        fake.count(),
        1,
        "only the addressed message reached the model"
    );
    assert_eq!(
        last_message(&fake, 0)["content"],
        "what is up?",
        "the mention is not part of the question"
    );

    // The same update delivered twice is handled once.
    let update = text_update(41, 7, "once", false);
    assert_eq!(gw.post(&update).await.0, 200);
    let (status, body) = gw.post(&update).await;
    assert_eq!(status, 200);
    assert_eq!(body["duplicate"], true);
    gw.until("one answer", |t| t.shown(41).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gw.telegram.shown(41).len(), 1);

    // Commands, in this order: the switch holds for the next message and for /new.
    gw.message(42, "/agent coder").await;
    gw.until_shown_containing(42, "now talking to Agent coder")
        .await;
    gw.message(42, "hello coder").await;
    gw.until("coder answered", |t| t.shown(42).len() == 2).await;
    assert!(
        fake.bodies().last().unwrap()["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("You are coder.")
    );
    for (command, reply) in [
        ("/agent nobody", "no agent called <code>nobody</code>"),
        ("/new", "Started a new conversation with Agent coder"),
        ("/status", "tokens today"),
        ("/help", "/agent NAME"),
    ] {
        gw.message(42, command).await;
        gw.until_shown_containing(42, reply).await;
    }

    // Bad input: malformed JSON, no update id, an unknown kind, a huge body, a voice message.
    let (status, body) = gw
        .post_raw(b"{not json".to_vec(), Some(&gw.secret.clone()))
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a JSON update")
    );
    let (status, _) = gw.post(&json!({"message": {}})).await;
    assert_eq!(status, 400);
    let (status, _) = gw
        .post(&json!({"update_id": 99_999, "poll": {"id": "1", "question": "?"}}))
        .await;
    assert_eq!(status, 200, "unknown kinds are accepted and skipped");
    let huge = vec![b' '; 2 * 1024 * 1024];
    let (status, _) = gw.post_raw(huge, Some(&gw.secret.clone())).await;
    assert_eq!(status, 413);
    let mut document = text_update(43, 7, "", false);
    document["message"].as_object_mut().unwrap().remove("text");
    document["message"]["document"] =
        json!({"file_id": "BQACAgIAAx", "file_unique_id": "u", "file_name": "report.pdf"});
    gw.post(&document).await;
    gw.until_shown_containing(43, "cannot take documents yet")
        .await;
    // Still alive and answering.
    gw.post(&text_update(44, 7, "still there?", false)).await;
    gw.until("an answer after the bad input", |t| {
        t.shown(44) == ["answer"]
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn the_web_chat_streams_the_router_events_for_the_callers_own_user() {
    let gw = Gateway::start(false, Some("a")).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("hello web"));
    let ask = json!({"text": "hi", "agent": "a"});
    let chat = |credential, body| gw.call(Method::POST, "/v1/chat", credential, Some(body));
    let read_only = gw.stack.plane.token(&["read"]).await;
    for (credential, status) in [
        (Credential::Nobody, 401),
        (Credential::Bearer(&read_only), 403),
    ] {
        assert_eq!(
            chat(credential, &ask).await.status(),
            status,
            "{credential:?}"
        );
    }
    let token = gw.stack.plane.token(&["agents:use"]).await;
    let r = chat(Credential::Bearer(&token), &ask).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("event: token"), "{body}");
    assert!(body.contains("hello web"), "{body}");
    let empty = json!({"text": "", "agent": "a"});
    let r = chat(Credential::Bearer(&token), &empty).await;
    assert_eq!(r.status(), 422, "the router's error comes through");

    // An admin's browser session: the cookie and its CSRF token.
    daarion_control_plane::admins::create_admin(
        &gw.stack.plane.db.pool,
        "ops",
        "a long enough passphrase",
    )
    .await
    .unwrap();
    let login = gw
        .stack
        .http
        .post(gw.stack.plane.url("/auth/login"))
        .json(&json!({"username": "ops", "password": "a long enough passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = login.json::<Value>().await.unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for (credential, status, why) in [
        (
            Credential::Session {
                cookie: &cookie,
                csrf: None,
            },
            403,
            "a session without its CSRF token",
        ),
        (
            Credential::Session {
                cookie: "daarion_session=forged",
                csrf: Some(&csrf),
            },
            401,
            "a forged session",
        ),
    ] {
        assert_eq!(chat(credential, &ask).await.status(), status, "{why}");
    }
    let session = Credential::Session {
        cookie: &cookie,
        csrf: Some(&csrf),
    };
    let r = chat(session, &ask).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("hello web"));
    let (_, who) = gw
        .stack
        .memory(
            reqwest::Method::POST,
            "/v1/identities/resolve",
            Some(json!({"channel": "web", "external_id": "admin:ops"})),
        )
        .await;
    assert_eq!(who["created"], false, "the turn was the admin's own");
    gw.stop().await;
}

#[tokio::test]
async fn set_webhook_registers_the_public_url_with_the_secret() {
    let gw = Gateway::start(false, Some("a")).await;
    let err = daarion_gateway::set_webhook(&gw.config, "mainbot")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("public_url"), "{err}");
    let mut bot = gw.bot.clone();
    bot["public_url"] = json!("https://bots.example.org");
    gw.stack.config("telegram.mainbot", bot).await;
    let url = daarion_gateway::set_webhook(&gw.config, "mainbot")
        .await
        .unwrap();
    assert_eq!(url, "https://bots.example.org/telegram/mainbot/webhook");
    let call = gw
        .telegram
        .calls("setWebhook")
        .pop()
        .expect("setWebhook called");
    assert!(
        call.raw
            .contains("https://bots.example.org/telegram/mainbot/webhook"),
        "{}",
        call.raw
    );
    assert!(
        call.raw.contains(&gw.secret),
        "the secret token is registered"
    );
    gw.stop().await;
}

fn tool_call_reply(id: &str, name: &str, arguments: &str) -> Reply {
    daarion_llm::testing::stream(sse(&[
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": arguments}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    ]))
}

fn voice_update(chat: i64, file_id: &str) -> Value {
    let mut update = text_update(chat, 7, "", false);
    update["message"].as_object_mut().unwrap().remove("text");
    update["message"]["voice"] = json!({"file_id": file_id, "file_unique_id": "u", "duration": 11, "mime_type": "audio/ogg"});
    update
}

/// The last message of the `call`-th request the agent's model received.
fn last_message(fake: &Fake, call: usize) -> Value {
    fake.bodies()[call]["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_else(|| panic!("request {call} has messages"))
}

fn photo_update(chat: i64, file_id: &str, caption: Option<&str>) -> Value {
    let mut update = text_update(chat, 7, "", false);
    update["message"].as_object_mut().unwrap().remove("text");
    update["message"]["photo"] = json!([
        {"file_id": "thumbnail", "file_unique_id": "t", "width": 90, "height": 60},
        {"file_id": file_id, "file_unique_id": "u", "width": 40, "height": 30},
    ]);
    if let Some(caption) = caption {
        update["message"]["caption"] = json!(caption);
    }
    update
}

/// A picture the vision model's image decoder reads like Telegram's JPEGs.
fn picture() -> Vec<u8> {
    daarion_swapper::testing::bmp(40, 30)
}

/// Posts the photo to fresh chats until one is handled under the bot's new settings, which reach
/// the gateway through the bus: with a vision model (`described`) or politely refused without
/// one. Returns that chat.
async fn photo_under_new_settings(
    gw: &Gateway,
    chats: std::ops::Range<i64>,
    photo: &str,
    caption: Option<&str>,
    described: bool,
) -> i64 {
    for chat in chats {
        gw.post(&photo_update(chat, photo, caption)).await;
        gw.until("a reply to the photo", |t| !t.shown(chat).is_empty())
            .await;
        let refused = gw.telegram.shown(chat)[0].contains("cannot look at photos");
        if refused != described {
            return chat;
        }
    }
    panic!("the bot's new settings never reached the gateway (vision model: {described})");
}

#[tokio::test]
async fn a_photo_is_described_by_the_vision_model_and_answered_with_its_caption() {
    let gw = Gateway::start(true, Some("a")).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("What a picture."));
    // The agent may look again (describe_image, with the photo passed along) and draw
    // (generate_image, through a cloud images API the fake speaks).
    gw.stack
        .config(
            "agents.a",
            json!({"vision_model": "eyes", "image_model": "fake/painter"}),
        )
        .await;

    let mut bot = gw.bot.clone();
    bot["vision_model"] = json!("eyes");
    gw.stack.config("telegram.mainbot", bot).await;
    let photo = gw.telegram.add_file(picture());
    let chat = photo_under_new_settings(&gw, 40..60, &photo, Some("What is this?"), true).await;
    // The agent's answer, perhaps still streaming: wait for all of it.
    gw.until("the answer to the photo", |t| {
        t.shown(chat) == ["What a picture."]
    })
    .await;
    let asked = last_message(&fake, 0)["content"]
        .as_str()
        .unwrap()
        .to_owned();
    let description = asked
        .strip_prefix("[photo: ")
        .and_then(|rest| rest.strip_suffix("]\nWhat is this?"))
        .unwrap_or_else(|| panic!("the agent reads the description, then the caption: {asked}"));
    assert!(
        description.split_whitespace().count() >= 3,
        "the vision model described it in words: {description}"
    );
    let fetched: Vec<String> = gw
        .telegram
        .calls("getFile")
        .iter()
        .map(|c| c.raw.clone())
        .collect();
    assert!(
        fetched.iter().all(|raw| !raw.contains("thumbnail")),
        "the largest size is fetched: {fetched:?}"
    );

    // The photo travels with the message: the agent's own question about it is answered by
    // the vision model.
    fake.then(tool_call_reply(
        "call_look",
        "describe_image",
        r#"{"question": "What colour is it?"}"#,
    ))
    .then(openai_answer("It is a picture."));
    let before = fake.count();
    gw.post(&photo_update(chat, &photo, Some("And the colour?")))
        .await;
    gw.until("the answer after looking", |t| {
        t.shown(chat).iter().any(|m| m == "It is a picture.")
    })
    .await;
    let looked = last_message(&fake, before + 1);
    assert_eq!(
        looked["role"], "tool",
        "the tool's result goes back to the model"
    );
    assert!(
        looked["content"].as_str().unwrap().contains("\"answer\""),
        "the vision model answered: {looked}"
    );

    // A picture the agent draws arrives as a photo after the text.
    let png: &[u8] = b"\x89PNG\r\n\x1a\n-drawn";
    fake.then(tool_call_reply(
        "call_draw",
        "generate_image",
        r#"{"prompt": "a red lighthouse"}"#,
    ))
    .then(daarion_llm::testing::openai_images(&[png]))
    .then(openai_answer("Here it is."));
    gw.post(&text_update(73, 7, "draw me a lighthouse", false))
        .await;
    gw.until("the drawn picture", |t| !t.calls("sendPhoto").is_empty())
        .await;
    let sent = gw.telegram.calls("sendPhoto").pop().unwrap();
    assert!(sent.raw.contains("-drawn"), "the picture was uploaded");
    assert!(gw.telegram.shown(73).iter().any(|m| m == "Here it is."));

    // Not a picture at all: a friendly reply, nothing asked of the agent, and it goes on.
    let asked_before = fake.count();
    let junk = gw
        .telegram
        .add_file(b"OggS this is a voice message, not a photo".to_vec());
    gw.post(&photo_update(72, &junk, None)).await;
    gw.until_shown_containing(72, "could not make out that picture")
        .await;
    assert_eq!(fake.count(), asked_before);
    gw.post(&text_update(72, 7, "still there?", false)).await;
    gw.until("an answer after the bad photo", |t| t.shown(72).len() == 2)
        .await;

    // Without a vision model: a polite "not here".
    gw.stack.config("telegram.mainbot", gw.bot.clone()).await;
    photo_under_new_settings(&gw, 80..120, &photo, None, false).await;
    gw.stop().await;
}

#[tokio::test]
async fn a_voice_message_is_transcribed_by_whisper_and_answered() {
    let gw = Gateway::start(true, Some("a")).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("Thank you, Mr President."));
    let models = std::env::var("DAARION_TEST_MODELS")
        .unwrap_or_else(|_| "/var/cache/daarion/test-models".into());
    let wav = std::fs::read(std::path::Path::new(&models).join("jfk.wav")).unwrap();
    let ogg = daarion_audio::encode_ogg_opus(&daarion_audio::decode(&wav).unwrap()).unwrap();
    let file_id = gw.telegram.add_file(ogg);
    let (status, _) = gw.post(&voice_update(60, &file_id)).await;
    assert_eq!(status, 200);
    gw.until("the answer to the voice message", |t| {
        t.shown(60) == ["Thank you, Mr President."]
    })
    .await;
    let asked = last_message(&fake, 0)["content"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        asked.contains("ask not what your country can do for you"),
        "{asked}"
    );
    assert_eq!(gw.telegram.calls("getFile").len(), 1);

    // Not audio at all: a friendly reply, nothing asked of the model, and the gateway goes on.
    let junk = gw
        .telegram
        .add_file(b"GIF89a this is a picture, not a voice message".to_vec());
    gw.post(&voice_update(61, &junk)).await;
    gw.until_shown_containing(61, "could not make out that voice message")
        .await;
    assert_eq!(fake.count(), 1);

    // Spoken answers on request: the text, then the same answer as an OGG/Opus voice message.
    gw.message(63, "/voice on").await;
    gw.until_shown_containing(63, "Voice replies are on").await;
    gw.message(63, "say something").await;
    gw.until("a voice reply", |t| !t.calls("sendVoice").is_empty())
        .await;
    let voice = gw.telegram.calls("sendVoice").pop().unwrap();
    assert!(voice.raw.contains("OggS"), "an OGG/Opus file was uploaded");
    assert!(
        gw.telegram
            .shown(63)
            .iter()
            .any(|m| m == "Thank you, Mr President.")
    );
    gw.message(63, "/voice off").await;
    gw.until_shown_containing(63, "Voice replies are off").await;
    // The agent choosing to speak (the speak tool) sends a voice message without /voice on.
    fake.then(tool_call_reply(
        "call_9",
        "speak",
        r#"{"text": "Hello there."}"#,
    ))
    .then(openai_answer("Spoken."));
    let before = gw.telegram.calls("sendVoice").len();
    gw.post(&text_update(64, 7, "say hello", false)).await;
    gw.until("the spoken answer", |t| {
        t.calls("sendVoice").len() == before + 1
    })
    .await;
    gw.until_shown_containing(63, "Voice replies are off").await;
    gw.message(62, "still there?").await;
    gw.until("an answer after the bad voice file", |t| {
        t.shown(62).len() == 1
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn long_polling_fetches_updates_into_the_same_queue() {
    let gw = Gateway::start(false, Some("a")).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("polled answer"));
    let first = text_update(70, 7, "hello by polling", false);
    let id = first["update_id"].as_i64().unwrap();
    gw.telegram.queue_update(first);
    let mut bot = gw.bot.clone();
    bot["mode"] = json!("polling");
    gw.stack.config("telegram.mainbot", bot).await;
    gw.until("the polled message answered", |t| {
        t.shown(70) == ["polled answer"]
    })
    .await;
    assert!(
        !gw.telegram.calls("deleteWebhook").is_empty(),
        "the webhook is removed first"
    );
    gw.until("the offset moves past the update", |t| {
        t.calls("getUpdates")
            .iter()
            .any(|c| c.body["offset"].as_i64() == Some(id + 1))
    })
    .await;
    // Telegram delivering it again (it was not yet confirmed) changes nothing.
    gw.telegram
        .queue_update(text_update(71, 7, "second", false));
    gw.until("the second answered", |t| t.shown(71).len() == 1)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(gw.telegram.shown(70).len(), 1, "answered once");
    assert_eq!(fake.count(), 2);
    gw.stop().await;
}

#[tokio::test]
async fn the_bot_token_and_webhook_secret_never_reach_the_logs() {
    let logs = helpers::logs();
    let gw = Gateway::start(false, Some("a")).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("fine"));
    // A wrong secret, a good update, then polling against an address where nothing listens.
    gw.post_raw(b"{}".to_vec(), Some("not-the-secret")).await;
    gw.post(&text_update(80, 7, "hi", false)).await;
    gw.until("the answer", |t| t.shown(80) == ["fine"]).await;
    let mut bot = gw.bot.clone();
    bot["mode"] = json!("polling");
    bot["api_url"] = json!("http://127.0.0.1:9");
    gw.stack.config("telegram.mainbot", bot).await;
    // Generous: on a loaded machine the polling loop takes a while to restart and fail.
    for _ in 0..1200 {
        if String::from_utf8_lossy(&logs.lock().unwrap()).contains("getUpdates failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("getUpdates failed"), "the failure was logged");
    assert!(
        text.contains("wrong secret token"),
        "the refusal was logged"
    );
    assert!(
        !text.contains("TESTTOKEN"),
        "the bot token leaked into a log line"
    );
    assert!(
        !text.contains(&gw.secret),
        "the webhook secret leaked into a log line"
    );
    gw.stop().await;
}

#[tokio::test]
async fn pairing_keeps_strangers_out_until_an_administrator_approves_them() {
    let gw = Gateway::start(false, None).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("welcome aboard"));
    // Only the `user` role may talk to the agent; newcomers are guests.
    let policy = json!({"roles": {"user": {"use": true, "models": {"allow": ["*"]}, "tools": {"allow": ["*"]}, "modes": {"allow": ["*"]}}}});
    gw.stack.agent("a", "You are a.", None, Some(policy)).await;
    let mut bot = gw.bot.clone();
    bot["agent"] = json!("a");
    bot["pairing"] = json!(true);
    gw.stack.config("telegram.mainbot", bot).await;

    gw.post(&text_update(90, 9, "/start", false)).await;
    gw.until_shown_containing(90, "pairing code").await;
    let shown = gw.telegram.shown(90).join(" ");
    let code = shown
        .split_whitespace()
        .find(|w| w.len() == 10 && w.chars().nth(4) == Some('-'))
        .unwrap()
        .trim_end_matches(';')
        .to_owned();
    gw.post(&text_update(90, 9, "let me in", false)).await;
    gw.until("the same code again", |t| {
        t.shown(90).iter().filter(|m| m.contains(&code)).count() == 2
    })
    .await;
    assert_eq!(fake.count(), 0, "nothing reached the agent");

    let root = Credential::Bearer(&gw.stack.plane.root);
    let reader = gw.stack.plane.token(&["read"]).await;
    for (credential, status) in [
        (Credential::Nobody, 401),
        (Credential::Bearer(&reader), 403),
    ] {
        let r = gw.call(Method::GET, "/v1/pairings", credential, None).await;
        assert_eq!(r.status(), status, "{credential:?}");
    }
    let r = gw.call(Method::GET, "/v1/pairings", root, None).await;
    assert_eq!(r.status(), 200);
    let pending: Value = r.json().await.unwrap();
    assert_eq!(pending[0]["code"], code.as_str(), "{pending}");
    assert_eq!(pending[0]["telegram_user"], 9);
    let approve = |code: &str| format!("/v1/pairings/{code}/approve");
    let r = gw
        .call(Method::POST, &approve("NOPE-NOPE"), root, None)
        .await;
    assert_eq!(r.status(), 404);
    let r = gw.call(Method::POST, &approve(&code), root, None).await;
    assert_eq!(r.status(), 200);
    let approved: Value = r.json().await.unwrap();
    assert_eq!(approved["roles"], json!(["user"]), "{approved}");
    gw.until_shown_containing(90, "You are approved").await;
    // Until the role change reaches the caches the user still gets the code: ask again.
    for _ in 0..40 {
        gw.post(&text_update(90, 9, "hello now", false)).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
        if gw.telegram.shown(90).iter().any(|m| m == "welcome aboard") {
            break;
        }
    }
    gw.until("an answer at last", |t| {
        t.shown(90).iter().any(|m| m == "welcome aboard")
    })
    .await;
    let r = gw.call(Method::GET, "/v1/pairings", root, None).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!([]));
    gw.stop().await;
}

#[tokio::test]
async fn markdown_is_sent_as_telegram_html_with_a_plain_text_fallback() {
    let gw = Gateway::start(false, Some("a")).await;
    let fake = gw.stack.fake().await;
    fake.always(openai_answer("**Paris** is the capital; try `x < y`."));
    gw.post(&text_update(95, 7, "capital?", false)).await;
    gw.until("the formatted answer", |t| {
        t.shown(95).len() == 1 && !t.shown(95)[0].ends_with('…')
    })
    .await;
    // The last send or edit in that chat carries the final, converted text (a slow machine
    // may have shown a draft first).
    let mut sent: Vec<_> = gw
        .telegram
        .calls("sendMessage")
        .into_iter()
        .chain(gw.telegram.calls("editMessageText"))
        .filter(|c| c.body["chat_id"] == 95 && c.body["parse_mode"] == "HTML")
        .collect();
    sent.sort_by_key(|c| c.at);
    let sent = sent.pop().unwrap();
    assert_eq!(sent.body["parse_mode"], "HTML");
    assert_eq!(
        sent.body["text"],
        "<b>Paris</b> is the capital; try <code>x &lt; y</code>."
    );
    // Telegram refusing the markup: the same answer arrives as plain text.
    gw.telegram
        .refuse_html
        .store(true, std::sync::atomic::Ordering::SeqCst);
    gw.post(&text_update(96, 7, "again?", false)).await;
    // The streamed draft ends in " …" until the final edit.
    gw.until("the plain answer", |t| {
        t.shown(96) == ["**Paris** is the capital; try `x < y`."]
    })
    .await;
    assert_eq!(
        gw.telegram.shown(96),
        ["**Paris** is the capital; try `x < y`."]
    );
    assert_eq!(gw.telegram.calls("sendMessage:400").len(), 1);
    gw.stop().await;
}
