//! Built-in tools the model may call. Each is data ([`ToolSpec`]: a name, a description, a
//! JSON schema its arguments are validated against before it runs, and the function that runs
//! it) in a file of its own; the [`Toolbox`] holds them, and each is gated by the agent's
//! policy (`tools.allow`) at admission.

mod context;
mod metered;
mod spec;
mod toolbox;

mod describe_image;
mod explore_memory;
mod generate_image;
mod recall_facts;
mod remember_fact;
mod remember_relation;
mod search_memory;
mod speak;
mod start_crew_run;

pub use context::{Media, ToolContext};
pub use spec::{ToolResult, ToolSpec};
pub use toolbox::Toolbox;
