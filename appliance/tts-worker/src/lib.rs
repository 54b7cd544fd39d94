//! Text to speech for the swapper, in its own process like every backend: the swapper loads,
//! evicts and restarts it the same way. It speaks with espeak-ng (offline, any of its
//! languages) or an edge-tts online voice; the speech is re-encoded to what the client asked for.

pub mod edge;
pub mod engine;
pub mod protocol;
