//! The real provider clients against local servers speaking the real wire protocols.

use std::sync::Arc;
use std::time::{Duration, Instant};

use daarion_llm::testing::{Fake, Reply, openai_answer, sse, stream};
use daarion_llm::{
    Chain, ChatRequest, LlmError, Message, Ollama, OpenAiCompatible, Provider, Resilient,
    RetryPolicy, Role, Timeouts, ToolCall, Usage, collect,
};
use serde_json::json;

fn request() -> ChatRequest {
    ChatRequest {
        model: "any".into(),
        messages: vec![
            Message::new(Role::System, "You are helpful."),
            Message::new(Role::User, "Hi"),
        ],
        tools: vec![],
        temperature: Some(0.2),
        max_tokens: Some(64),
    }
}

fn fast() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_millis(500),
        stall: Duration::from_millis(300),
    }
}

/// Long enough never to fail a healthy run on a loaded machine, so a broken timeout fails the
/// test instead of hanging it; the real figures are printed by `benches/timing.rs`.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn retries(n: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries: n,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
    }
}

async fn openai(fake: &Fake, key: Option<&str>) -> OpenAiCompatible {
    let addr = fake.serve().await;
    OpenAiCompatible::new(
        "cloud",
        format!("http://{addr}/v1"),
        key.map(str::to_owned),
        fast(),
    )
}

#[tokio::test]
async fn openai_streams_tokens_tool_calls_and_usage() {
    let fake = Fake::default();
    fake.then(stream(sse(&[
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": "lo"}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "search_memory", "arguments": "{\"qu"}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "ery\":\"paris\"}"}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}),
    ])));
    let provider = openai(&fake, Some("sk-test")).await;
    let mut req = request();
    req.tools = vec![
        json!({"type": "function", "function": {"name": "search_memory", "parameters": {"type": "object"}}}),
    ];
    req.messages.push(Message {
        role: Role::Assistant,
        content: String::new(),
        tool_calls: vec![ToolCall {
            id: "call_0".into(),
            name: "recall".into(),
            arguments: "{}".into(),
        }],
        tool_call_id: None,
    });
    req.messages.push(Message {
        role: Role::Tool,
        content: "nothing".into(),
        tool_calls: vec![],
        tool_call_id: Some("call_0".into()),
    });
    let response = collect(provider.chat_stream(req).await.unwrap())
        .await
        .unwrap();
    assert_eq!(response.content, "Hello");
    assert_eq!(
        response.tool_calls,
        vec![ToolCall {
            id: "call_1".into(),
            name: "search_memory".into(),
            arguments: "{\"query\":\"paris\"}".into()
        }]
    );
    assert_eq!(
        response.usage,
        Usage {
            prompt_tokens: 12,
            completion_tokens: 5
        }
    );
    assert_eq!(response.finish_reason, "tool_calls");

    let (headers, body) = fake.requests.lock().unwrap()[0].clone();
    assert_eq!(headers["authorization"], "Bearer sk-test");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["tools"][0]["function"]["name"], "search_memory");
    assert_eq!(
        body["messages"][2]["tool_calls"][0]["function"]["name"],
        "recall"
    );
    assert_eq!(body["messages"][3]["role"], "tool");
    assert_eq!(body["messages"][3]["tool_call_id"], "call_0");
}

#[tokio::test]
async fn ollama_streams_ndjson_with_tool_calls_and_usage() {
    let fake = Fake::default();
    fake.then(stream(vec![
        format!("{}\n", json!({"model": "m", "message": {"role": "assistant", "content": "Hi"}, "done": false})),
        format!("{}\n", json!({"model": "m", "message": {"role": "assistant", "content": " there"}, "done": false})),
        format!("{}\n", json!({"model": "m", "message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "recall", "arguments": {"k": 1}}}]}, "done": false})),
        format!("{}\n", json!({"model": "m", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "prompt_eval_count": 7, "eval_count": 3})),
    ]));
    let addr = fake.serve().await;
    let provider = Ollama::new("local", format!("http://{addr}"), fast());
    let response = collect(provider.chat_stream(request()).await.unwrap())
        .await
        .unwrap();
    assert_eq!(response.content, "Hi there");
    assert_eq!(response.tool_calls.len(), 1);
    assert_eq!(response.tool_calls[0].name, "recall");
    assert_eq!(response.tool_calls[0].arguments, "{\"k\":1}");
    assert_eq!(response.usage.total(), 10);
    assert_eq!(response.finish_reason, "tool_calls");
    let body = fake.requests.lock().unwrap()[0].1.clone();
    assert_eq!(body["stream"], true);
    assert_eq!(body["options"]["num_predict"], 64);
}

#[tokio::test]
async fn a_429_is_retried_after_the_time_the_provider_asked_for() {
    let fake = Fake::default();
    fake.then(Reply::Status {
        status: 429,
        body: json!({"error": {"message": "rate limited"}}).to_string(),
        retry_after: Some(1),
    })
    .then(openai_answer("ok"));
    let provider = Resilient::new(Arc::new(openai(&fake, None).await), retries(3));
    let started = Instant::now();
    let response = tokio::time::timeout(HANG_GUARD, async {
        collect(provider.chat_stream(request()).await.unwrap()).await
    })
    .await
    .expect("the retry never came")
    .unwrap();
    let waited = started.elapsed();
    assert_eq!(response.content, "ok");
    assert_eq!(fake.count(), 2);
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After: 1 honoured, not the 10 ms backoff: {waited:?}"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_and_keep_the_providers_message() {
    let fake = Fake::default();
    fake.always(Reply::Status {
        status: 400,
        body: json!({"error": {"message": "model `x` does not exist"}}).to_string(),
        retry_after: None,
    });
    let provider = Resilient::new(Arc::new(openai(&fake, None).await), retries(3));
    let err = provider.chat_stream(request()).await.err().unwrap();
    assert_eq!(fake.count(), 1);
    assert!(
        matches!(&err, LlmError::Http { status: 400, message, .. } if message.contains("does not exist")),
        "{err}"
    );
    assert!(!err.retryable());
}

#[tokio::test]
async fn a_failing_cloud_provider_falls_back_to_the_local_model() {
    let cloud = Fake::default();
    cloud.always(Reply::Status {
        status: 500,
        body: "upstream exploded".into(),
        retry_after: None,
    });
    let local = Fake::default();
    local.then(stream(vec![
        format!("{}\n", json!({"message": {"content": "from local"}, "done": false})),
        format!("{}\n", json!({"message": {"content": ""}, "done": true, "prompt_eval_count": 2, "eval_count": 2})),
    ]));
    let local_addr = local.serve().await;
    let chain = Chain::new(vec![
        (
            Arc::new(Resilient::new(
                Arc::new(openai(&cloud, Some("k")).await),
                retries(1),
            )) as Arc<dyn Provider>,
            "deepseek-chat".into(),
        ),
        (
            Arc::new(Ollama::new("local", format!("http://{local_addr}"), fast()))
                as Arc<dyn Provider>,
            "smollm2".into(),
        ),
    ]);
    let (stream, attempt) = chain.chat_stream(request()).await.unwrap();
    let response = collect(stream).await.unwrap();
    assert_eq!(response.content, "from local");
    assert_eq!(attempt.provider, "local");
    assert_eq!(attempt.model, "smollm2");
    assert_eq!(attempt.failures.len(), 1);
    assert!(
        attempt.failures[0].contains("HTTP 500"),
        "{:?}",
        attempt.failures
    );
    assert_eq!(cloud.count(), 2, "one retry before falling back");
    assert_eq!(
        cloud.requests.lock().unwrap()[0].1["model"],
        "deepseek-chat"
    );
    assert_eq!(local.requests.lock().unwrap()[0].1["model"], "smollm2");

    // When every link fails, the error lists them all.
    let dead = Chain::new(vec![(
        Arc::new(OpenAiCompatible::new(
            "gone",
            "http://127.0.0.1:1/v1",
            None,
            fast(),
        )) as Arc<dyn Provider>,
        "m".into(),
    )]);
    match dead.chat_stream(request()).await {
        Err(LlmError::Exhausted(failures)) => assert!(failures[0].contains("gone: cannot connect")),
        other => panic!("{:?}", other.map(|(_, a)| a)),
    }
}

#[tokio::test]
async fn a_stalled_stream_and_a_silent_server_time_out() {
    let fake = Fake::default();
    fake.then(Reply::Stream {
        chunks: sse(&[json!({"choices": [{"index": 0, "delta": {"content": "partial"}}]})])
            .into_iter()
            .take(1)
            .collect(),
        gap: Duration::from_millis(1),
        stall: true,
    })
    .then(Reply::Hang);
    let provider = openai(&fake, None).await;
    let err = tokio::time::timeout(HANG_GUARD, async {
        collect(provider.chat_stream(request()).await.unwrap()).await
    })
    .await
    .expect("a stalled stream must end in an error, not hang")
    .unwrap_err();
    assert!(matches!(err, LlmError::Stalled { .. }), "{err}");

    let err = tokio::time::timeout(HANG_GUARD, provider.chat_stream(request()))
        .await
        .expect("a silent server must time out, not hang")
        .err()
        .unwrap();
    assert!(matches!(err, LlmError::Timeout { .. }), "{err}");
    assert!(err.retryable());
}

#[tokio::test]
async fn a_stream_cut_short_is_an_error_not_a_short_answer() {
    let fake = Fake::default();
    fake.then(stream(vec![format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"content": "Half an ans"}}]})
    )]));
    let provider = openai(&fake, None).await;
    let err = collect(provider.chat_stream(request()).await.unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Protocol { .. }), "{err}");
}

#[tokio::test]
async fn images_come_back_inline_or_by_url_and_rate_limits_are_retried() {
    use daarion_llm::ImageRequest;
    use daarion_llm::testing::openai_images;
    let png: &[u8] = b"\x89PNG\r\n\x1a\n-first";
    let second: &[u8] = b"\x89PNG\r\n\x1a\n-second";
    // A picture served by URL, as DALL-E and xAI answer by default.
    let app = axum::Router::new().route(
        "/picture.png",
        axum::routing::get(move || async move { second.to_vec() }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let picture = format!("http://{}/picture.png", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let fake = Fake::default();
    fake.then(Reply::Status {
        status: 429,
        body: json!({"error": {"message": "slow down"}}).to_string(),
        retry_after: Some(0),
    })
    .then(openai_images(&[png]))
    .then(Reply::Status {
        status: 200,
        body: json!({"data": [{"url": picture}]}).to_string(),
        retry_after: None,
    })
    .then(Reply::Status {
        status: 200,
        body: json!({"data": []}).to_string(),
        retry_after: None,
    });
    let provider = Resilient::new(Arc::new(openai(&fake, Some("sk-img")).await), retries(2));
    let ask = |size: Option<&str>| ImageRequest {
        model: "painter".into(),
        prompt: "a lighthouse".into(),
        size: size.map(str::to_owned),
        n: 1,
    };
    let images = provider
        .generate_images(ask(Some("512x512")))
        .await
        .unwrap();
    assert_eq!(images, vec![png.to_vec()]);
    let (headers, body) = fake.requests.lock().unwrap()[1].clone();
    assert_eq!(headers["authorization"], "Bearer sk-img");
    assert_eq!(
        body,
        json!({"model": "painter", "prompt": "a lighthouse", "n": 1, "size": "512x512"})
    );
    assert_eq!(
        provider.generate_images(ask(None)).await.unwrap(),
        vec![second.to_vec()]
    );
    let e = provider.generate_images(ask(None)).await.unwrap_err();
    assert!(e.to_string().contains("no image"), "{e}");
    // Ollama has no images API: it says so without a call.
    let ollama = Ollama::new("ollama", "http://127.0.0.1:1", fast());
    let e = ollama.generate_images(ask(None)).await.unwrap_err();
    assert!(e.to_string().contains("does not generate images"), "{e}");
}
