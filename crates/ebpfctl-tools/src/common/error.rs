//! Errors of the snoop tools: bad input (one line, said before anything is loaded) and
//! failures of the kernel side.
use ebpfctl_core::consume::ConsumeError;
use ebpfctl_core::load::LoadError;
use ebpfctl_core::metrics::MetricsError;
use ebpfctl_core::object::ObjectError;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A flag value that cannot be used; the message names the flag.
    #[error("{0}")]
    BadInput(String),
    #[error("the bundled {tool} probe is unreadable: {source}")]
    Object {
        tool: &'static str,
        source: ObjectError,
    },
    #[error("loading the {tool} probe: {source}")]
    Load {
        tool: &'static str,
        source: LoadError,
    },
    #[error("the {tool} probe has no map {map}")]
    MissingMap {
        tool: &'static str,
        map: &'static str,
    },
    #[error("{what}: {source}")]
    Map {
        what: String,
        source: libbpf_rs::Error,
    },
    #[error(transparent)]
    Consume(#[from] ConsumeError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("writing output: {0}")]
    Output(std::io::Error),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl ToolError {
    /// True when the failure is the caller's input (exit code 2 rather than 1).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, ToolError::BadInput(_))
    }
}
