//! The llama.cpp engine of `daarion-llama-worker`, also linked in-process by the swapper's
//! benchmark as the reference it is measured against.

pub mod engine;
pub mod protocol;
