//! What a tool's live stream view shows (execsnoop, opensnoop, observe): plain data a tool
//! fills in whether or not the `tui` feature is built; `print::tui::stream` draws it.

/// The view: an event log and summary panels computed from the same events.
#[derive(Debug, Clone)]
pub struct ViewSpec {
    /// The log panel's name (e.g. `execs`).
    pub log: String,
    /// The log's column headers.
    pub columns: Vec<String>,
    /// The summary panels, below the log.
    pub tallies: Vec<TallySpec>,
}

/// One summary panel: events counted per key (the first `keys.len()` cells of a row), with
/// the events that failed and, when `durations`, the median and 99th percentile.
#[derive(Debug, Clone)]
pub struct TallySpec {
    /// The panel's name, e.g. `top commands`.
    pub title: String,
    /// What one row is, for the title: `commands`, `files`.
    pub noun: String,
    /// The key columns' headers.
    pub keys: Vec<String>,
    /// The count column's header, e.g. `execs`.
    pub count: String,
    /// The failed column's header, e.g. `failed`.
    pub errors: String,
    /// `p50` and `p99` columns from the events' durations.
    pub durations: bool,
}

/// One event: its log cells, its key in each summary (in [`ViewSpec::tallies`] order),
/// whether it failed, and how long it took.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub cells: Vec<String>,
    pub keys: Vec<Vec<String>>,
    pub error: bool,
    pub duration_ns: Option<u64>,
}
