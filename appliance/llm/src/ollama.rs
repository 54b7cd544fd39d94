//! Ollama's native `/api/chat`, streamed as NDJSON.

use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::retry::{Timeouts, send};
use crate::types::{ChatEvent, ChatRequest, EventStream, Provider, ToolCall, Usage};
use crate::{LlmError, sse};

/// An Ollama server; `base_url` like `http://127.0.0.1:11434`.
pub struct Ollama {
    name: String,
    base_url: String,
    http: reqwest::Client,
    timeouts: Timeouts,
}

impl Ollama {
    pub fn new(name: impl Into<String>, base_url: impl Into<String>, timeouts: Timeouts) -> Self {
        Ollama {
            name: name.into(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            http: timeouts.client(),
            timeouts,
        }
    }
}

fn body(request: &ChatRequest) -> Value {
    let messages: Vec<Value> = request
        .messages
        .iter()
        .map(|m| {
            let mut v = json!({
                "role": m.role.as_str(),
                "content": m.content,
            });
            if !m.tool_calls.is_empty() {
                // Ollama takes arguments as an object, not as JSON text.
                v["tool_calls"] = m
                    .tool_calls
                    .iter()
                    .map(|c| {
                        let args: Value = serde_json::from_str(&c.arguments).unwrap_or(json!({}));
                        json!({"function": {"name": c.name, "arguments": args}})
                    })
                    .collect();
            }
            v
        })
        .collect();
    let mut options = json!({});
    if let Some(t) = request.temperature {
        options["temperature"] = json!(t);
    }
    if let Some(n) = request.max_tokens {
        options["num_predict"] = json!(n);
    }
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": true,
        "options": options,
    });
    if !request.tools.is_empty() {
        body["tools"] = json!(request.tools);
    }
    body
}

impl Provider for Ollama {
    fn name(&self) -> &str {
        &self.name
    }

    fn chat_stream(&self, request: ChatRequest) -> BoxFuture<'_, Result<EventStream, LlmError>> {
        Box::pin(async move {
            let call = self
                .http
                .post(format!("{}/api/chat", self.base_url))
                .json(&body(&request));
            let response = send(&self.name, call, self.timeouts.first_byte).await?;
            let mut lines = sse::lines(
                self.name.clone(),
                response.bytes_stream(),
                self.timeouts.stall,
            );
            let provider = self.name.clone();
            let (tx, rx) = mpsc::channel::<Result<ChatEvent, LlmError>>(64);
            tokio::spawn(async move {
                let protocol = |message: String| LlmError::Protocol {
                    provider: provider.clone(),
                    message,
                };
                let mut calls = 0;
                while let Some(line) = lines.next().await {
                    let line = match line {
                        Ok(l) if l.trim().is_empty() => continue,
                        Ok(l) => l,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    };
                    let chunk: Value = match serde_json::from_str(&line) {
                        Ok(v) => v,
                        Err(e) => {
                            let _ = tx
                                .send(Err(protocol(format!("bad NDJSON line: {e}"))))
                                .await;
                            return;
                        }
                    };
                    if let Some(error) = chunk["error"].as_str() {
                        let _ = tx.send(Err(protocol(error.to_owned()))).await;
                        return;
                    }
                    let message = &chunk["message"];
                    if let Some(text) = message["content"].as_str().filter(|t| !t.is_empty())
                        && tx
                            .send(Ok(ChatEvent::Token(text.to_owned())))
                            .await
                            .is_err()
                    {
                        return;
                    }
                    for call in message["tool_calls"].as_array().into_iter().flatten() {
                        calls += 1;
                        let event = ChatEvent::ToolCall(ToolCall {
                            // Ollama does not number calls; give them stable ids per answer.
                            id: format!("call_{calls}"),
                            name: call["function"]["name"].as_str().unwrap_or("").to_owned(),
                            arguments: call["function"]["arguments"].to_string(),
                        });
                        if tx.send(Ok(event)).await.is_err() {
                            return;
                        }
                    }
                    if chunk["done"].as_bool() == Some(true) {
                        let usage = Usage {
                            prompt_tokens: chunk["prompt_eval_count"].as_u64().unwrap_or(0) as u32,
                            completion_tokens: chunk["eval_count"].as_u64().unwrap_or(0) as u32,
                        };
                        let finish_reason = match chunk["done_reason"].as_str() {
                            _ if calls > 0 => "tool_calls".to_owned(),
                            Some(reason) => reason.to_owned(),
                            None => "stop".to_owned(),
                        };
                        let _ = tx
                            .send(Ok(ChatEvent::Done {
                                usage,
                                finish_reason,
                            }))
                            .await;
                        return;
                    }
                }
                let _ = tx
                    .send(Err(protocol("the stream ended before `done`".into())))
                    .await;
            });
            Ok(crate::types::channel_stream(rx))
        })
    }
}
