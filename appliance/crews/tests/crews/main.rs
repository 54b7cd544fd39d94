//! The crews service on the real stack: definitions, CrewAI import, validation, the run
//! lifecycle through the worker's journal, cancel/resume/rerun, the outbox's events on the bus,
//! live events, and who may do what.

mod authz;
mod defs;
mod runs;
mod stack;
