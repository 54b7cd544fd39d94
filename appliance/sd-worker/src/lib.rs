//! Image generation for the swapper, in its own process like every backend: stable-diffusion.cpp
//! bundles its own ggml, which cannot share a binary with llama.cpp's or whisper.cpp's, and a
//! crash in native code must never take the swapper down.

pub mod engine;
mod ffi;
pub mod protocol;
