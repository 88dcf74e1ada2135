//! Allocation-free formatting for the per-event path: RFC 3339 timestamps with
//! nanoseconds, local clock times, JSON members.
use ebpfctl_core::decode::sink::write_json_str;

/// Appends `unix_ns` as RFC 3339 UTC with 9 fractional digits ("2017-11-03T15:16:56.890551865Z").
pub fn push_rfc3339(out: &mut Vec<u8>, unix_ns: i128) {
    let secs = unix_ns.div_euclid(1_000_000_000) as i64;
    let nanos = unix_ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    push_num(out, y as u64, 4);
    out.push(b'-');
    push_num(out, u64::from(m), 2);
    out.push(b'-');
    push_num(out, u64::from(d), 2);
    out.push(b'T');
    push_num(out, u64::from(sod / 3600), 2);
    out.push(b':');
    push_num(out, u64::from(sod / 60 % 60), 2);
    out.push(b':');
    push_num(out, u64::from(sod % 60), 2);
    out.push(b'.');
    push_num(out, u64::from(nanos), 9);
    out.push(b'Z');
}

/// [`push_rfc3339`] for a stream of close timestamps: the date and time of day are formatted
/// once per second.
#[derive(Debug, Default)]
pub struct Rfc3339Cache {
    sec: Option<i64>,
    prefix: Vec<u8>,
}

impl Rfc3339Cache {
    pub fn push(&mut self, out: &mut Vec<u8>, unix_ns: i128) {
        let sec = unix_ns.div_euclid(1_000_000_000) as i64;
        if self.sec != Some(sec) {
            self.prefix.clear();
            push_rfc3339(&mut self.prefix, i128::from(sec) * 1_000_000_000);
            self.prefix.truncate(20); // "YYYY-MM-DDTHH:MM:SS."
            self.sec = Some(sec);
        }
        out.extend_from_slice(&self.prefix);
        push_num(out, (unix_ns - i128::from(sec) * 1_000_000_000) as u64, 9);
        out.push(b'Z');
    }
}

/// RFC 3339 text of `unix_ns` (see [`push_rfc3339`]).
pub fn rfc3339(unix_ns: i128) -> String {
    let mut v = Vec::with_capacity(30);
    push_rfc3339(&mut v, unix_ns);
    String::from_utf8(v).unwrap_or_default()
}

/// Zero-padded decimal of at least `width` digits.
fn push_num(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    while v > 0 || buf.len() - i < width {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if i == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

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

pub fn time(out: &mut Vec<u8>, k: &str, unix_ns: i128) {
    key(out, k, false);
    out.push(b'"');
    push_rfc3339(out, unix_ns);
    out.push(b'"');
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
    fn rfc3339_matches_the_time_crate() {
        for ns in [
            0i128,
            1_509_722_216_890_551_865,
            951_782_400_000_000_001,
            4_102_444_799_999_999_999,
        ] {
            let ours = rfc3339(ns);
            let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns).unwrap();
            let want = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.nanosecond()
            );
            assert_eq!(ours, want);
            let mut cache = Rfc3339Cache::default();
            for delta in [0, 1, 999_999_999, 1_000_000_000, 86_400_000_000_000] {
                let mut v = Vec::new();
                cache.push(&mut v, ns + delta);
                assert_eq!(String::from_utf8(v).unwrap(), rfc3339(ns + delta));
            }
            assert_eq!(ours.len(), 30, "{ours}");
        }
        assert_eq!(
            rfc3339(1_509_722_216_890_551_865),
            "2017-11-03T15:16:56.890551865Z"
        );
    }

    #[test]
    fn c_strings() {
        assert_eq!(cstr(b"bash\0\0junk"), "bash");
        assert_eq!(cstr(b"0123456789abcdef"), "0123456789abcdef");
    }
}
