//! Speech to text in its own process (whisper.cpp through whisper-rs): whisper.cpp bundles its
//! own ggml, which cannot share a process with llama.cpp's.

pub mod engine;
pub mod protocol;
