//! opensnoop's printers: JSON lines and the classic table.
use ebpfctl_core::decode::sys::errno_name;
use ebpfctl_core::decode::time::ktime_to_unix_ns;

use ebpfctl_container::resolver::Entry;

use super::event::{flag_names, Open};
use crate::common::live::{Event, TallySpec, ViewSpec};
use crate::common::{containers, fmt};

/// Table columns chosen by flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableStyle {
    /// -T: a TIME(s) column, seconds since tracing started.
    pub timestamp: bool,
    /// -U: the UID column.
    pub uid: bool,
    /// -e: FLAGS (and TID) columns.
    pub extended: bool,
    /// A CONTAINER column (containers are shown).
    pub container: bool,
}

/// Where an event's container is, when containers are shown.
pub struct Place<'a> {
    pub entry: Option<&'a Entry>,
    /// The path on the host, for absolute paths of a container's process.
    pub host_path: Option<&'a str>,
}

/// Appends one JSON line.
pub fn json(out: &mut Vec<u8>, o: &Open<'_>, place: &Place<'_>) {
    out.extend_from_slice(b"{\"type\":\"open\"");
    fmt::time(out, "time", ktime_to_unix_ns(o.time_ns));
    fmt::uint(out, "pid", u64::from(o.pid));
    fmt::uint(out, "tid", u64::from(o.tid));
    fmt::string(out, "comm", &o.comm());
    fmt::uint(out, "uid", u64::from(o.uid));
    fmt::int(out, "fd", o.fd());
    fmt::int(out, "errno", o.errno());
    if o.ret < 0 {
        if let Some(n) = errno_name(o.errno()) {
            fmt::string(out, "error", &n);
        }
    }
    fmt::uint(out, "flags", o.flags);
    fmt::uint(out, "mode", o.mode);
    fmt::string(out, "path", &o.path());
    if o.path_truncated {
        fmt::boolean(out, "path_truncated", true);
    }
    fmt::string(out, "syscall", o.syscall.name());
    fmt::int(out, "dfd", i64::from(o.dfd));
    fmt::uint(out, "cgroup_id", o.cgroup_id);
    if let Some(h) = place.host_path {
        fmt::string(out, "host_path", h);
    }
    containers::json_member(out, place.entry);
    out.extend_from_slice(b"}\n");
}

pub fn table_header(style: &TableStyle) -> String {
    let mut s = String::new();
    if style.timestamp {
        s.push_str(&format!("{:<14}", "TIME(s)"));
    }
    if style.uid {
        s.push_str(&format!("{:<7} ", "UID"));
    }
    s.push_str(&format!("{:<7} ", "PID"));
    if style.extended {
        s.push_str(&format!("{:<7} ", "TID"));
    }
    if style.container {
        s.push_str(&format!("{:<16} ", "CONTAINER"));
    }
    s.push_str(&format!("{:<16} {:>4} {:>3} ", "COMM", "FD", "ERR"));
    if style.extended {
        s.push_str(&format!("{:<28} ", "FLAGS"));
    }
    s.push_str("PATH\n");
    s
}

/// The live view: the table's columns as a log (TIME always), the files opened and the
/// processes opening them.
pub fn live_spec(style: &TableStyle) -> ViewSpec {
    let mut columns = vec!["time"];
    if style.uid {
        columns.push("uid");
    }
    columns.push("pid");
    if style.extended {
        columns.push("tid");
    }
    if style.container {
        columns.push("container");
    }
    columns.extend(["comm", "fd", "err"]);
    if style.extended {
        columns.push("flags");
    }
    columns.push("path");
    let tally = |title: &str, noun: &str, keys: &[&str]| TallySpec {
        title: title.into(),
        noun: noun.into(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
        count: "opens".into(),
        errors: "errors".into(),
        durations: false,
    };
    ViewSpec {
        log: "opens".into(),
        columns: columns.into_iter().map(String::from).collect(),
        tallies: vec![
            tally("top files", "files", &["path"]),
            tally("top processes", "processes", &["pid", "comm"]),
        ],
    }
}

/// The live view's event for one open.
pub fn live_event(style: &TableStyle, o: &Open<'_>, place: &Place<'_>) -> Event {
    let comm = o.comm().into_owned();
    let path = o.path().replace(['\n', '\r'], "?");
    let mut cells = vec![fmt::local_hms(ktime_to_unix_ns(o.time_ns))];
    if style.uid {
        cells.push(o.uid.to_string());
    }
    cells.push(o.pid.to_string());
    if style.extended {
        cells.push(o.tid.to_string());
    }
    if style.container {
        cells.push(containers::cell(place.entry).to_string());
    }
    cells.extend([comm.clone(), o.fd().to_string(), o.errno().to_string()]);
    if style.extended {
        cells.push(flag_names(o.flags).to_string());
    }
    cells.push(path.clone());
    Event {
        cells,
        keys: vec![vec![path], vec![o.pid.to_string(), comm]],
        error: o.ret < 0,
        duration_ns: None,
    }
}

pub fn table_row(
    out: &mut Vec<u8>,
    style: &TableStyle,
    o: &Open<'_>,
    since_start_ns: i128,
    place: &Place<'_>,
) {
    let mut s = String::with_capacity(96);
    if style.timestamp {
        s.push_str(&format!("{:<14.9}", since_start_ns.max(0) as f64 / 1e9));
    }
    if style.uid {
        s.push_str(&format!("{:<7} ", o.uid));
    }
    s.push_str(&format!("{:<7} ", o.pid));
    if style.extended {
        s.push_str(&format!("{:<7} ", o.tid));
    }
    if style.container {
        s.push_str(&format!("{:<16} ", containers::cell(place.entry)));
    }
    s.push_str(&format!("{:<16} {:>4} {:>3} ", o.comm(), o.fd(), o.errno()));
    if style.extended {
        s.push_str(&format!("{:<28} ", flag_names(o.flags)));
    }
    s.push_str(&o.path().replace(['\n', '\r'], "?"));
    out.extend_from_slice(s.as_bytes());
    out.push(b'\n');
}
