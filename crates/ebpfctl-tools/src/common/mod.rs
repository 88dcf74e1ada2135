//! What execsnoop and opensnoop share: loading a tool's probe through the runner's loader,
//! the event loop with lost-event accounting, metrics, and fast text formatting.

pub mod cgroup_filter;
pub mod containers;
pub mod error;
pub mod fmt;
#[cfg(test)]
pub mod layout;
pub mod live;
pub mod probe;
pub mod report;
pub mod users;

pub use error::ToolError;
