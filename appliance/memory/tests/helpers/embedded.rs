//! Vectors in the memory service's default backend, Qdrant's embedded engine under its data
//! directory: nothing to configure or clean up. The Qdrant server test binary swaps in
//! `qdrant.rs` under the same module name.

pub struct Vectors;

impl Vectors {
    pub async fn new() -> Vectors {
        Vectors
    }

    pub fn configure(&self, _config: &mut daarion_config::Config) {}

    pub async fn clean(&self) {}
}
