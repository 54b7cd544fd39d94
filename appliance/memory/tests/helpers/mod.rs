//! What the memory API tests share: the service in-process (`memory`) and, for the Bolt graph
//! backend, a FalkorDB server of a test's own (`falkor`, shared with the graph benchmark).

// Each test binary uses a different part of this.
#![allow(dead_code)]

pub mod falkor;
pub mod memory;
