//! Allocation-free formatting for the per-event path: JSON members (timestamps through
//! `ebpfctl_core::decode::time`), local clock times.
use ebpfctl_core::decode::sink::write_json_str;
use ebpfctl_core::decode::time::write_rfc3339_quoted;

/// "HH:MM:SS" in local time for a Unix time in ns.
pub fn local_hms(unix_ns: i128) -> String {
    let t = unix_ns.div_euclid(1_000_000_000) as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which we own; `t` is a valid time_t.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return "??:??:??".into();
        }
        tm
    };
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// Appends `,"key":` (or `"key":` when `first`).
pub fn key(out: &mut Vec<u8>, k: &str, first: bool) {
    if !first {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

pub fn uint(out: &mut Vec<u8>, k: &str, v: u64) {
    key(out, k, false);
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

pub fn int(out: &mut Vec<u8>, k: &str, v: i64) {
    key(out, k, false);
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

pub fn string(out: &mut Vec<u8>, k: &str, v: &str) {
    key(out, k, false);
    write_json_str(out, v);
}

pub fn boolean(out: &mut Vec<u8>, k: &str, v: bool) {
    key(out, k, false);
    out.extend_from_slice(if v { b"true" } else { b"false" });
}

/// `"k":"2017-11-03T15:16:56.890551865Z"`, through core's per-second cached formatter.
pub fn time(out: &mut Vec<u8>, k: &str, unix_ns: i128) {
    key(out, k, false);
    write_rfc3339_quoted(unix_ns, out);
}

pub fn str_array<'a>(out: &mut Vec<u8>, k: &str, items: impl IntoIterator<Item = &'a str>) {
    key(out, k, false);
    out.push(b'[');
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, s);
    }
    out.push(b']');
}

/// A NUL-terminated (or full) C char array as text, invalid UTF-8 replaced.
pub fn cstr(b: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    match std::str::from_utf8(&b[..end]) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(&b[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_strings() {
        assert_eq!(cstr(b"bash\0\0junk"), "bash");
        assert_eq!(cstr(b"0123456789abcdef"), "0123456789abcdef");
    }
}
