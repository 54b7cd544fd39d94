//! Text to speech for the swapper, in its own process like every backend: the swapper loads,
//! evicts and restarts it the same way. This build speaks with espeak-ng (offline, any of its
//! languages); its WAV is re-encoded to what the client asked for.

pub mod engine;
pub mod protocol;
