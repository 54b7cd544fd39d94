//! The model and its context, and the two things done with them: generate and embed.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use daarion_worker_io::{Event, Ready, codes};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::mtmd::{MtmdBitmap, MtmdContext, MtmdContextParams, MtmdInputText};
use llama_cpp_2::sampling::LlamaSampler;

use crate::protocol::{Args, Chat, Embed};
// The swapper's own check, made again here: a worker started by hand (or a caller other than
// the swapper) gets the same refusal before llama.cpp decodes anything.
use daarion_worker_io::image_header::{self, MAX_IMAGES_PER_REQUEST};

/// Where a request's events go: stdout in the worker process, a closure in benchmarks.
pub type Emit<'a> = &'a mut dyn FnMut(Event);

pub struct Engine {
    // Field order matters: the context borrows the model, the model needs the backend.
    context: LlamaContext<'static>,
    model: &'static LlamaModel,
    /// A vision model's projector: images become embeddings the model reads like tokens.
    vision: Option<MtmdContext>,
    mode: String,
    n_ctx: u32,
    n_batch: u32,
}

/// Checks the prompt (and the answer asked for) fit a context of `n_ctx` tokens.
fn fits(n_ctx: u32, chat: &Chat, prompt_tokens: usize) -> Result<(), (&'static str, String)> {
    let budget = prompt_tokens as u64 + u64::from(chat.max_tokens.max(1));
    if prompt_tokens == 0 || budget > u64::from(n_ctx) {
        return Err((
            codes::CONTEXT_LENGTH_EXCEEDED,
            format!(
                "the prompt is {prompt_tokens} tokens and {} more were asked for; the context holds {n_ctx}",
                chat.max_tokens
            ),
        ));
    }
    Ok(())
}

/// Where generation starts once the prompt (text, and images) is in the context.
struct Evaluated {
    prompt_tokens: usize,
    /// The next position in the sequence.
    n_past: i32,
}

fn error(emit: Emit<'_>, id: u64, code: &str, message: impl std::fmt::Display) {
    emit(Event::error(id, code, message));
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
        let vision = match &args.mmproj {
            Some(path) if !embed => {
                let params = MtmdContextParams {
                    use_gpu: args.gpu_layers > 0,
                    print_timings: false,
                    n_threads: args.threads,
                    ..MtmdContextParams::default()
                };
                let vision = MtmdContext::init_from_file(path, model, &params)
                    .map_err(|e| format!("cannot load the vision projector {path}: {e}"))?;
                if !vision.support_vision() {
                    return Err(format!("{path} is a projector without vision"));
                }
                Some(vision)
            }
            Some(_) => return Err("a projector (--mmproj) is for chat models".into()),
            None => None,
        };
        Ok(Engine {
            context,
            vision,
            model,
            mode: args.mode.clone(),
            n_ctx,
            n_batch,
        })
    }

    pub fn ready_event(&self) -> Ready {
        Ready {
            mode: Some(self.mode.clone()),
            n_ctx: Some(self.n_ctx),
            n_embd: Some(self.model.n_embd()),
            vision: Some(self.vision.is_some()),
            model_bytes: Some(self.model.size()),
            ..Ready::default()
        }
    }

    pub fn chat(&mut self, chat: &Chat, cancelled: &AtomicU64, emit: Emit<'_>) {
        let id = chat.id;
        if self.mode != "chat" {
            return error(
                emit,
                id,
                codes::WRONG_MODE,
                "this model serves embeddings, not chat",
            );
        }
        let images: usize = chat.messages.iter().map(|m| m.images.len()).sum();
        if images > 0 && self.vision.is_none() {
            return error(
                emit,
                id,
                codes::NO_VISION,
                "this model cannot see images: it has no vision projector",
            );
        }
        // Each image stands in the text as the projector's marker, before the message's words.
        let marker = llama_cpp_2::mtmd::mtmd_default_marker();
        let messages: Result<Vec<LlamaChatMessage>, _> = chat
            .messages
            .iter()
            .map(|m| {
                let mut content = String::new();
                for _ in &m.images {
                    content.push_str(marker);
                    content.push('\n');
                }
                content.push_str(&m.content);
                LlamaChatMessage::new(m.role.clone(), content)
            })
            .collect();
        let messages = match messages {
            Ok(m) => m,
            Err(e) => return error(emit, id, codes::BAD_REQUEST, e),
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
                    codes::TEMPLATE,
                    format!("cannot apply the chat template: {e}"),
                );
            }
        };
        self.context.clear_kv_cache();
        let evaluated = if images > 0 {
            self.evaluate_with_images(chat, &prompt)
        } else {
            self.evaluate_text(chat, &prompt)
        };
        let Evaluated {
            prompt_tokens,
            n_past,
        } = match evaluated {
            Ok(e) => e,
            Err((code, message)) => return error(emit, id, code, message),
        };
        let vocab = self.model.vocab();
        let mut batch = LlamaBatch::new(1, 1);
        let mut sampler = if chat.temperature <= 0.0 {
            LlamaSampler::greedy()
        } else {
            LlamaSampler::chain_simple([
                LlamaSampler::temp(chat.temperature),
                LlamaSampler::dist(chat.seed),
            ])
        };
        let mut pos = n_past;
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
            // The logits of the last token decoded, whichever batch (or image) it ended.
            let token = sampler.sample(&self.context, -1);
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
                emit(Event::Token { id, text });
            }
            batch.clear();
            if let Err(e) = batch.add(token, pos, &[0], true) {
                return error(emit, id, codes::INTERNAL, e);
            }
            pos += 1;
            if let Err(e) = self.context.decode(&mut batch) {
                return error(emit, id, codes::INTERNAL, format!("decode failed: {e}"));
            }
        }
        if !pending.is_empty() {
            emit(Event::Token {
                id,
                text: String::from_utf8_lossy(&pending).into_owned(),
            });
        }
        emit(Event::Done {
            id,
            finish_reason: finish.to_owned(),
            prompt_tokens: prompt_tokens as u64,
            completion_tokens: u64::from(produced),
            generation_ms: generating.elapsed().as_secs_f64() * 1000.0,
        });
    }

    /// A text prompt into the context, in batches; logits only for its last token.
    fn evaluate_text(
        &mut self,
        chat: &Chat,
        prompt: &str,
    ) -> Result<Evaluated, (&'static str, String)> {
        let tokens = self.model.vocab().tokenize(prompt.as_bytes(), true, true);
        fits(self.n_ctx, chat, tokens.len())?;
        let mut batch = LlamaBatch::new(self.n_batch as usize, 1);
        let last = tokens.len() - 1;
        for (chunk_start, chunk) in tokens.chunks(self.n_batch as usize).enumerate() {
            batch.clear();
            for (i, token) in chunk.iter().enumerate() {
                let pos = chunk_start * self.n_batch as usize + i;
                batch
                    .add(*token, pos as i32, &[0], pos == last)
                    .map_err(|e| (codes::INTERNAL, e.to_string()))?;
            }
            self.context
                .decode(&mut batch)
                .map_err(|e| (codes::INTERNAL, format!("decode failed: {e}")))?;
        }
        Ok(Evaluated {
            prompt_tokens: tokens.len(),
            n_past: tokens.len() as i32,
        })
    }

    /// A prompt with images: the projector decodes each image and turns it into embeddings
    /// that are evaluated in place of its marker.
    fn evaluate_with_images(
        &mut self,
        chat: &Chat,
        prompt: &str,
    ) -> Result<Evaluated, (&'static str, String)> {
        use base64::Engine as _;
        let (n_ctx, n_batch) = (self.n_ctx, self.n_batch);
        let vision = self.vision.as_mut().expect("checked by the caller");
        let mut bitmaps = Vec::new();
        let count = chat.messages.iter().map(|m| m.images.len()).sum::<usize>();
        if count > MAX_IMAGES_PER_REQUEST {
            return Err((
                codes::BAD_REQUEST,
                format!("a request may carry at most {MAX_IMAGES_PER_REQUEST} images"),
            ));
        }
        for (index, encoded) in chat.messages.iter().flat_map(|m| &m.images).enumerate() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| {
                    (
                        codes::BAD_IMAGE,
                        format!("image {index} is not base64: {e}"),
                    )
                })?;
            // The decoder allocates what the header claims: a small file can ask for gigabytes.
            if let Some(why) = image_header::refusal(&bytes) {
                return Err((codes::BAD_IMAGE, format!("image {index}: {why}")));
            }
            let bitmap = MtmdBitmap::from_buffer(vision, &bytes, false).map_err(|_| {
                (
                    codes::BAD_IMAGE,
                    format!("image {index} cannot be decoded (PNG, JPEG, GIF, BMP, WebP…)"),
                )
            })?;
            bitmaps.push(bitmap);
        }
        let refs: Vec<&MtmdBitmap> = bitmaps.iter().collect();
        let chunks = vision
            .tokenize(
                MtmdInputText {
                    text: prompt.to_owned(),
                    add_special: true,
                    parse_special: true,
                },
                &refs,
            )
            .map_err(|e| (codes::BAD_REQUEST, format!("cannot place the images: {e}")))?;
        let prompt_tokens = chunks.total_tokens();
        fits(n_ctx, chat, prompt_tokens)?;
        let n_past = chunks
            .eval_chunks(vision, &mut self.context, 0, 0, n_batch as i32, true)
            .map_err(|e| {
                (
                    codes::INTERNAL,
                    format!("evaluating the images failed: {e}"),
                )
            })?;
        Ok(Evaluated {
            prompt_tokens,
            n_past,
        })
    }

    pub fn embed(&mut self, embed: &Embed, emit: Emit<'_>) {
        let id = embed.id;
        if self.mode != "embed" {
            return error(
                emit,
                id,
                codes::WRONG_MODE,
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
                    codes::CONTEXT_LENGTH_EXCEEDED,
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
                    return error(emit, id, codes::INTERNAL, e);
                }
            }
            if let Err(e) = self.context.decode(&mut batch) {
                return error(emit, id, codes::INTERNAL, format!("decode failed: {e}"));
            }
            let vector = match self.context.embeddings_seq_ith(0) {
                Ok(v) => v,
                Err(e) => return error(emit, id, codes::INTERNAL, format!("no embedding: {e}")),
            };
            let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            data.push(vector.iter().map(|x| x / norm).collect::<Vec<f32>>());
        }
        emit(Event::Embeddings {
            id,
            data,
            prompt_tokens: prompt_tokens as u64,
        });
    }
}
