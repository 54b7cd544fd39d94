//! The model and its context, and the two things done with them: generate and embed.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use serde_json::json;

use crate::protocol::{Args, Chat, Embed};

/// Where a request's events go: stdout in the worker process, a closure in benchmarks.
pub type Emit<'a> = &'a mut dyn FnMut(serde_json::Value);

pub struct Engine {
    // Field order matters: the context borrows the model, the model needs the backend.
    context: LlamaContext<'static>,
    model: &'static LlamaModel,
    mode: String,
    n_ctx: u32,
    n_batch: u32,
}

fn error(emit: Emit<'_>, id: u64, code: &str, message: impl std::fmt::Display) {
    emit(json!({"id": id, "event": "error", "code": code, "message": message.to_string()}));
}

impl Engine {
    pub fn load(args: &Args) -> Result<Engine, String> {
        let mut backend = LlamaBackend::init().map_err(|e| e.to_string())?;
        backend.void_logs();
        // One model per process for the life of the process: leaking it gives the context a
        // 'static borrow without self-referential structs, and the OS frees it at exit.
        let backend: &'static LlamaBackend = Box::leak(Box::new(backend));
        let params = LlamaModelParams::default().with_n_gpu_layers(args.gpu_layers);
        let model = LlamaModel::load_from_file(backend, &args.model, &params)
            .map_err(|e| format!("cannot load {}: {e}", args.model))?;
        let model: &'static LlamaModel = Box::leak(Box::new(model));
        let n_ctx = args.ctx.min(model.n_ctx_train().max(1));
        let embed = args.mode == "embed";
        // An encoder sees the whole input at once: its batch is the whole context.
        let n_batch = if embed { n_ctx } else { n_ctx.min(512) };
        let mut params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(n_ctx))
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_threads(args.threads)
            .with_n_threads_batch(args.threads);
        if embed {
            params = params
                .with_embeddings(true)
                .with_pooling_type(LlamaPoolingType::Mean);
        }
        let context = model
            .new_context(backend, params)
            .map_err(|e| format!("cannot create a context: {e}"))?;
        Ok(Engine {
            context,
            model,
            mode: args.mode.clone(),
            n_ctx,
            n_batch,
        })
    }

    pub fn ready_event(&self) -> serde_json::Value {
        json!({
            "event": "ready",
            "mode": self.mode,
            "n_ctx": self.n_ctx,
            "n_embd": self.model.n_embd(),
            "model_bytes": self.model.size(),
        })
    }

    pub fn chat(&mut self, chat: &Chat, cancelled: &AtomicU64, emit: Emit<'_>) {
        let id = chat.id;
        if self.mode != "chat" {
            return error(
                emit,
                id,
                "wrong_mode",
                "this model serves embeddings, not chat",
            );
        }
        let messages: Result<Vec<LlamaChatMessage>, _> = chat
            .messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.clone(), m.content.clone()))
            .collect();
        let messages = match messages {
            Ok(m) => m,
            Err(e) => return error(emit, id, "bad_request", e),
        };
        let prompt = match self
            .model
            .chat_template(None)
            .map_err(|e| e.to_string())
            .and_then(|t| {
                self.model
                    .apply_chat_template(&t, &messages, true)
                    .map_err(|e| e.to_string())
            }) {
            Ok(p) => p,
            Err(e) => {
                return error(
                    emit,
                    id,
                    "template",
                    format!("cannot apply the chat template: {e}"),
                );
            }
        };
        let vocab = self.model.vocab();
        let tokens = vocab.tokenize(prompt.as_bytes(), true, true);
        let budget = tokens.len() as u64 + u64::from(chat.max_tokens.max(1));
        if tokens.is_empty() || budget > u64::from(self.n_ctx) {
            return error(
                emit,
                id,
                "context_length_exceeded",
                format!(
                    "the prompt is {} tokens and {} more were asked for; the context holds {}",
                    tokens.len(),
                    chat.max_tokens,
                    self.n_ctx
                ),
            );
        }
        self.context.clear_kv_cache();
        let mut batch = LlamaBatch::new(self.n_batch as usize, 1);
        // The prompt, in batches; logits only for its last token.
        let last = tokens.len() - 1;
        for (chunk_start, chunk) in tokens.chunks(self.n_batch as usize).enumerate() {
            batch.clear();
            for (i, token) in chunk.iter().enumerate() {
                let pos = chunk_start * self.n_batch as usize + i;
                if let Err(e) = batch.add(*token, pos as i32, &[0], pos == last) {
                    return error(emit, id, "internal", e);
                }
            }
            if let Err(e) = self.context.decode(&mut batch) {
                return error(emit, id, "internal", format!("decode failed: {e}"));
            }
        }
        let mut sampler = if chat.temperature <= 0.0 {
            LlamaSampler::greedy()
        } else {
            LlamaSampler::chain_simple([
                LlamaSampler::temp(chat.temperature),
                LlamaSampler::dist(chat.seed),
            ])
        };
        let mut pos = tokens.len() as i32;
        let mut pending: Vec<u8> = Vec::new();
        let mut produced = 0u32;
        let mut finish = "length";
        // Generation speed is measured from here: the prompt is already evaluated.
        let generating = std::time::Instant::now();
        while produced < chat.max_tokens {
            if cancelled.load(Ordering::SeqCst) == id {
                finish = "cancelled";
                break;
            }
            let token = sampler.sample(&self.context, batch.n_tokens() - 1);
            sampler.accept(token);
            let end = vocab.is_eog(token);
            if end && !chat.ignore_eos {
                finish = "stop";
                break;
            }
            produced += 1;
            if !end {
                pending.extend(vocab.token_to_piece(token, false, None));
            }
            // Tokens can split a UTF-8 character: send only what is complete.
            let valid = match std::str::from_utf8(&pending) {
                Ok(_) => pending.len(),
                Err(e) => e.valid_up_to(),
            };
            if valid > 0 {
                let text = String::from_utf8_lossy(&pending[..valid]).into_owned();
                pending.drain(..valid);
                emit(json!({"id": id, "event": "token", "text": text}));
            }
            batch.clear();
            if let Err(e) = batch.add(token, pos, &[0], true) {
                return error(emit, id, "internal", e);
            }
            pos += 1;
            if let Err(e) = self.context.decode(&mut batch) {
                return error(emit, id, "internal", format!("decode failed: {e}"));
            }
        }
        if !pending.is_empty() {
            emit(json!({"id": id, "event": "token", "text": String::from_utf8_lossy(&pending)}));
        }
        emit(json!({
            "id": id,
            "event": "done",
            "finish_reason": finish,
            "prompt_tokens": tokens.len(),
            "completion_tokens": produced,
            "generation_ms": generating.elapsed().as_secs_f64() * 1000.0,
        }));
    }

    pub fn embed(&mut self, embed: &Embed, emit: Emit<'_>) {
        let id = embed.id;
        if self.mode != "embed" {
            return error(
                emit,
                id,
                "wrong_mode",
                "this model serves chat, not embeddings",
            );
        }
        let vocab = self.model.vocab();
        let mut data = Vec::with_capacity(embed.input.len());
        let mut prompt_tokens = 0usize;
        for (index, text) in embed.input.iter().enumerate() {
            let tokens = vocab.tokenize(text.as_bytes(), true, false);
            if tokens.is_empty() || tokens.len() > self.n_ctx as usize {
                return error(
                    emit,
                    id,
                    "context_length_exceeded",
                    format!(
                        "input {index} is {} tokens; the model takes 1 to {}",
                        tokens.len(),
                        self.n_ctx
                    ),
                );
            }
            prompt_tokens += tokens.len();
            self.context.clear_kv_cache();
            let mut batch = LlamaBatch::new(tokens.len(), 1);
            for (pos, token) in tokens.iter().enumerate() {
                if let Err(e) = batch.add(*token, pos as i32, &[0], true) {
                    return error(emit, id, "internal", e);
                }
            }
            if let Err(e) = self.context.decode(&mut batch) {
                return error(emit, id, "internal", format!("decode failed: {e}"));
            }
            let vector = match self.context.embeddings_seq_ith(0) {
                Ok(v) => v,
                Err(e) => return error(emit, id, "internal", format!("no embedding: {e}")),
            };
            let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            data.push(vector.iter().map(|x| x / norm).collect::<Vec<f32>>());
        }
        emit(
            json!({"id": id, "event": "embeddings", "data": data, "prompt_tokens": prompt_tokens}),
        );
    }
}
