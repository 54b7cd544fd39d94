//! The service's tables: definitions ([`defs`]) and runs with their journal ([`runs`]).

pub mod defs;
pub mod runs;
