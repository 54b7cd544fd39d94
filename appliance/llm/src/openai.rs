//! Any OpenAI-compatible chat completions API, streamed over SSE.

use std::collections::BTreeMap;

use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::retry::{Timeouts, send};
use crate::types::{
    ChatEvent, ChatRequest, EventStream, ImageRequest, Message, Provider, ToolCall, Usage,
};
use crate::{LlmError, sse};

/// DeepSeek, Mistral, Grok/xAI, vLLM, the swapper: `base_url` ends before `/chat/completions`
/// (e.g. `https://api.deepseek.com/v1`).
pub struct OpenAiCompatible {
    name: String,
    base_url: String,
    api_key: Option<String>,
    http: reqwest::Client,
    timeouts: Timeouts,
}

impl OpenAiCompatible {
    pub fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        api_key: Option<String>,
        timeouts: Timeouts,
    ) -> Self {
        OpenAiCompatible {
            name: name.into(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_key,
            http: timeouts.client(),
            timeouts,
        }
    }

    /// A POST to `path` under the base URL, with the API key when there is one.
    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        let call = self
            .http
            .post(format!("{}/{path}", self.base_url))
            .json(body);
        match &self.api_key {
            Some(key) => call.bearer_auth(key),
            None => call,
        }
    }
}

fn wire_message(m: &Message) -> Value {
    let mut v = json!({
        "role": m.role.as_str(),
        "content": m.content,
    });
    if !m.tool_calls.is_empty() {
        v["tool_calls"] = m
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
    }
    if let Some(id) = &m.tool_call_id {
        v["tool_call_id"] = json!(id);
    }
    v
}

pub(crate) fn body(request: &ChatRequest) -> Value {
    let mut body = json!({
        "model": request.model,
        "messages": request.messages.iter().map(wire_message).collect::<Vec<_>>(),
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        body["tools"] = json!(request.tools);
    }
    if let Some(t) = request.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = request.max_tokens {
        body["max_tokens"] = json!(m);
    }
    body
}

impl Provider for OpenAiCompatible {
    fn name(&self) -> &str {
        &self.name
    }

    fn chat_stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<EventStream, LlmError>> {
        Box::pin(async move {
            let call = self.post("chat/completions", &body(&request));
            let response = send(&self.name, call, self.timeouts.first_byte).await?;
            let lines = sse::lines(
                self.name.clone(),
                response.bytes_stream(),
                self.timeouts.stall,
            );
            Ok(parse(self.name.clone(), lines))
        })
    }

    /// `POST /images/generations`. No `response_format` is sent (gpt-image models refuse it):
    /// each picture comes back as `b64_json` or as a `url`, which is fetched.
    fn generate_images(
        &self,
        request: ImageRequest,
    ) -> BoxFuture<'_, Result<Vec<Vec<u8>>, LlmError>> {
        Box::pin(async move {
            let mut body =
                json!({"model": request.model, "prompt": request.prompt, "n": request.n});
            if let Some(size) = &request.size {
                body["size"] = json!(size);
            }
            let call = self.post("images/generations", &body);
            // Pictures take longer than a first token; the stall limit bounds the body too.
            let response = send(&self.name, call, self.timeouts.first_byte).await?;
            let protocol = |message: String| LlmError::Protocol {
                provider: self.name.clone(),
                message,
            };
            let answer: Value = tokio::time::timeout(self.timeouts.stall, response.json())
                .await
                .map_err(|_| LlmError::Stalled {
                    provider: self.name.clone(),
                    after: self.timeouts.stall,
                })?
                .map_err(|e| protocol(format!("not an images answer: {e}")))?;
            let mut images = Vec::new();
            for item in answer["data"].as_array().into_iter().flatten() {
                use base64::Engine;
                if let Some(b64) = item["b64_json"].as_str() {
                    images.push(
                        base64::engine::general_purpose::STANDARD
                            .decode(b64)
                            .map_err(|e| protocol(format!("b64_json: {e}")))?,
                    );
                } else if let Some(url) = item["url"].as_str() {
                    let fetched = send(&self.name, self.http.get(url), self.timeouts.first_byte)
                        .await?
                        .bytes()
                        .await
                        .map_err(|e| protocol(format!("cannot fetch the image: {e}")))?;
                    images.push(fetched.to_vec());
                }
            }
            if images.is_empty() {
                return Err(protocol("the answer holds no image".into()));
            }
            Ok(images)
        })
    }
}

/// Reads SSE lines on a task and forwards events; dropping the stream stops the task.
fn parse(
    provider: String,
    mut lines: futures::stream::BoxStream<'static, Result<String, LlmError>>,
) -> EventStream {
    let (tx, rx) = mpsc::channel::<Result<ChatEvent, LlmError>>(64);
    tokio::spawn(async move {
        let protocol = |message: String| LlmError::Protocol {
            provider: provider.clone(),
            message,
        };
        let mut calls: BTreeMap<u64, ToolCall> = BTreeMap::new();
        let mut usage = Usage::default();
        let mut finish = String::new();
        let mut done = false;
        while let Some(line) = lines.next().await {
            let line = match line {
                Ok(line) => line,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            let Some(data) = line.strip_prefix("data:").map(str::trim) else {
                continue; // comments, event names, blank separators
            };
            if data == "[DONE]" {
                done = true;
                break;
            }
            let chunk: Value = match serde_json::from_str(data) {
                Ok(v) => v,
                Err(e) => {
                    let _ = tx.send(Err(protocol(format!("bad SSE chunk: {e}")))).await;
                    return;
                }
            };
            if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
                usage = Usage {
                    prompt_tokens: u["prompt_tokens"].as_u64().unwrap_or(0) as u32,
                    completion_tokens: u["completion_tokens"].as_u64().unwrap_or(0) as u32,
                };
            }
            let Some(choice) = chunk["choices"].get(0) else {
                continue;
            };
            let delta = &choice["delta"];
            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty())
                && tx
                    .send(Ok(ChatEvent::Token(text.to_owned())))
                    .await
                    .is_err()
            {
                return;
            }
            for part in delta["tool_calls"].as_array().into_iter().flatten() {
                let index = part["index"].as_u64().unwrap_or(0);
                let call = calls.entry(index).or_insert_with(|| ToolCall {
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                });
                if let Some(id) = part["id"].as_str() {
                    call.id = id.to_owned();
                }
                if let Some(name) = part["function"]["name"].as_str() {
                    call.name.push_str(name);
                }
                if let Some(args) = part["function"]["arguments"].as_str() {
                    call.arguments.push_str(args);
                }
            }
            if let Some(reason) = choice["finish_reason"].as_str() {
                finish = reason.to_owned();
            }
        }
        if !done && finish.is_empty() {
            let _ = tx
                .send(Err(protocol(
                    "the stream ended before the answer did".into(),
                )))
                .await;
            return;
        }
        for (_, call) in calls {
            if tx.send(Ok(ChatEvent::ToolCall(call))).await.is_err() {
                return;
            }
        }
        let _ = tx
            .send(Ok(ChatEvent::Done {
                usage,
                finish_reason: finish,
            }))
            .await;
    });
    crate::types::channel_stream(rx)
}
