//! execsnoop's printers: JSON lines (the seed's `started` / `exited` / `error` events, plus
//! extra fields) and the classic table.
use ebpfctl_core::decode::sys::{errno_name, signal_name};

use super::track::{Proc, Source};
use crate::common::live::{Event, TallySpec, ViewSpec};
use crate::common::{containers, fmt};

/// What happened to a process.
pub enum Happening {
    Started,
    Exited {
        end_unix_ns: i128,
        /// Wait status: exit status << 8 | terminating signal.
        status: i32,
    },
    Error {
        code: i32,
    },
}

/// Appends one JSON line for `p`.
pub fn json(out: &mut Vec<u8>, p: &Proc, what: &Happening) {
    out.extend_from_slice(match what {
        Happening::Started => b"{\"type\":\"started\"",
        Happening::Exited { .. } => b"{\"type\":\"exited\"",
        Happening::Error { .. } => b"{\"type\":\"error\"",
    });
    fmt::time(out, "start_time", p.start_unix_ns);
    fmt::uint(out, "ppid", u64::from(p.ppid));
    fmt::string(out, "parent_comm", &p.parent_comm);
    fmt::uint(out, "pid", u64::from(p.pid));
    fmt::uint(out, "uid", u64::from(p.uid));
    fmt::uint(out, "gid", u64::from(p.gid));
    fmt::string(out, "exe", &p.exe);
    fmt::str_array(out, "args", p.args.iter().map(String::as_str));
    match what {
        Happening::Started => {}
        Happening::Exited {
            end_unix_ns,
            status,
        } => {
            fmt::time(out, "end_time", *end_unix_ns);
            let running = (*end_unix_ns - p.start_unix_ns).max(0);
            fmt::uint(out, "running_time_ns", running as u64);
            let sig = status & 0x7f;
            if sig != 0 {
                fmt::string(
                    out,
                    "exit_signal",
                    signal_name(i64::from(sig)).unwrap_or("unknown"),
                );
            } else {
                fmt::int(out, "exit_code", i64::from((status >> 8) & 0xff));
            }
        }
        Happening::Error { code } => {
            fmt::int(out, "error_code", i64::from(*code));
            if let Some(n) = errno_name(i64::from(code.unsigned_abs())) {
                fmt::string(out, "error", &n);
            }
        }
    }
    // Extras.
    fmt::string(out, "comm", &p.comm);
    if let Some(tid) = p.tid {
        fmt::uint(out, "tid", u64::from(tid));
    }
    if let Some(id) = p.cgroup_id {
        fmt::uint(out, "cgroup_id", id);
    }
    if let Some(h) = &p.host_exe {
        fmt::string(out, "host_exe", h);
    }
    containers::json_member(out, p.container.as_deref());
    fmt::boolean(out, "args_truncated", p.args_truncated);
    fmt::string(
        out,
        "source",
        match p.source {
            Source::Snapshot => "snapshot",
            Source::Exec => "exec",
            Source::Execveat => "execveat",
            Source::Fork => "fork",
        },
    );
    out.extend_from_slice(b"}\n");
}

/// Table columns chosen by flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct TableStyle {
    /// -T: local HH:MM:SS.
    pub time: bool,
    /// -t: seconds since tracing started.
    pub timestamp: bool,
    /// -U: the UID column.
    pub uid: bool,
    /// -q: arguments in double quotes.
    pub quote: bool,
    /// A CONTAINER column (containers are shown).
    pub container: bool,
}

pub fn table_header(style: &TableStyle) -> String {
    let mut s = String::new();
    if style.time {
        s.push_str(&format!("{:<9}", "TIME"));
    }
    if style.timestamp {
        s.push_str(&format!("{:<9}", "TIME(s)"));
    }
    if style.uid {
        s.push_str(&format!("{:<6} ", "UID"));
    }
    s.push_str(&format!("{:<16} {:<7} {:<7} ", "PCOMM", "PID", "PPID"));
    if style.container {
        s.push_str(&format!("{:<16} ", "CONTAINER"));
    }
    s.push_str(&format!("{:>3} ARGS\n", "RET"));
    s
}

/// The live view: the table's columns as a log (TIME always), and the commands by execs.
pub fn live_spec(style: &TableStyle) -> ViewSpec {
    let mut columns = vec!["time"];
    if style.uid {
        columns.push("uid");
    }
    columns.extend(["pcomm", "pid", "ppid"]);
    if style.container {
        columns.push("container");
    }
    columns.extend(["ret", "args"]);
    ViewSpec {
        log: "execs".into(),
        columns: columns.into_iter().map(String::from).collect(),
        tallies: vec![TallySpec {
            title: "top commands".into(),
            noun: "commands".into(),
            keys: vec!["pcomm".into()],
            count: "execs".into(),
            errors: "failed".into(),
            durations: false,
        }],
    }
}

/// The arguments as the table shows them, on one line.
fn args_text(style: &TableStyle, p: &Proc) -> String {
    let mut s = String::new();
    for (i, a) in p.args.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        if style.quote {
            s.push('"');
            s.push_str(&a.replace('\\', "\\\\").replace('"', "\\\""));
            s.push('"');
        } else {
            s.push_str(a);
        }
    }
    if p.args_truncated {
        s.push_str(" ...");
    }
    // One event, one line, whatever the arguments hold.
    s.replace(['\n', '\r'], " ")
}

/// The live view's event for an exec that returned `ret`.
pub fn live_event(style: &TableStyle, p: &Proc, ret: i32) -> Event {
    let mut cells = vec![fmt::local_hms(p.start_unix_ns)];
    if style.uid {
        cells.push(p.uid.to_string());
    }
    cells.extend([p.comm.clone(), p.pid.to_string(), p.ppid.to_string()]);
    if style.container {
        cells.push(containers::cell(p.container.as_deref()).to_string());
    }
    cells.extend([ret.to_string(), args_text(style, p)]);
    Event {
        cells,
        keys: vec![vec![p.comm.clone()]],
        error: ret != 0,
        duration_ns: None,
    }
}

/// One table row for an exec that returned `ret`.
pub fn table_row(out: &mut Vec<u8>, style: &TableStyle, p: &Proc, ret: i32, since_start_ns: i128) {
    let mut s = String::with_capacity(128);
    if style.time {
        s.push_str(&format!("{:<9}", fmt::local_hms(p.start_unix_ns)));
    }
    if style.timestamp {
        s.push_str(&format!("{:<9.3}", since_start_ns.max(0) as f64 / 1e9));
    }
    if style.uid {
        s.push_str(&format!("{:<6} ", p.uid));
    }
    s.push_str(&format!("{:<16} {:<7} {:<7} ", p.comm, p.pid, p.ppid));
    if style.container {
        s.push_str(&format!(
            "{:<16} ",
            containers::cell(p.container.as_deref())
        ));
    }
    s.push_str(&format!("{ret:>3} "));
    s.push_str(&args_text(style, p));
    // One event, one line, whatever the comm holds.
    let s = s.replace(['\n', '\r'], " ");
    out.extend_from_slice(s.as_bytes());
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc() -> Proc {
        Proc {
            pid: 22022,
            ppid: 15785,
            uid: 1000,
            gid: 1000,
            tid: None,
            start_unix_ns: 1_509_722_216_890_551_865,
            parent_comm: "bash".into(),
            comm: "curl".into(),
            exe: "/usr/bin/curl".into(),
            args: vec!["curl".into(), "-O".into(), "a \"b\"".into()],
            args_truncated: false,
            cgroup_id: None,
            source: Source::Exec,
            container: None,
            host_exe: None,
        }
    }

    #[test]
    fn seed_shape() {
        let mut b = Vec::new();
        json(
            &mut b,
            &proc(),
            &Happening::Exited {
                end_unix_ns: 1_509_722_216_908_970_285,
                status: 0,
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["type"], "exited");
        assert_eq!(v["start_time"], "2017-11-03T15:16:56.890551865Z");
        assert_eq!(v["end_time"], "2017-11-03T15:16:56.908970285Z");
        assert_eq!(v["running_time_ns"], 18_418_420);
        assert_eq!(v["args"][2], "a \"b\"");
        assert_eq!(v["ppid"], 15785);
        assert_eq!(v["parent_comm"], "bash");
        let mut b = Vec::new();
        json(&mut b, &proc(), &Happening::Error { code: -13 });
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error_code"], -13);
        assert_eq!(v["error"], "EACCES");
    }

    #[test]
    fn table_quotes() {
        let mut b = Vec::new();
        let style = TableStyle {
            quote: true,
            ..Default::default()
        };
        table_row(&mut b, &style, &proc(), 0, 0);
        let line = String::from_utf8(b).unwrap();
        assert!(line.starts_with("curl "), "{line}");
        assert!(
            line.ends_with("\"curl\" \"-O\" \"a \\\"b\\\"\"\n"),
            "{line}"
        );
    }
}
