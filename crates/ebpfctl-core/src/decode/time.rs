//! Time typedefs: `duration` (nanoseconds) and `timestamp` (`bpf_ktime_get_ns`, CLOCK_MONOTONIC).
use std::sync::OnceLock;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// Wall-clock nanoseconds minus monotonic nanoseconds, measured once per process.
fn monotonic_to_wall() -> i128 {
    static OFFSET: OnceLock<i128> = OnceLock::new();
    *OFFSET.get_or_init(|| clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC))
}

/// Current CLOCK_MONOTONIC in ns (what `bpf_ktime_get_ns` returns).
pub fn monotonic_now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC) as u64
}

/// RFC 3339 UTC with nanoseconds for a Unix time in ns.
pub fn rfc3339_ns(unix_ns: i128) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(unix_ns)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix_ns.to_string())
}

/// Appends `"YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ"` (quoted) for a Unix time in ns. The date part is
/// cached per second: this runs per event.
pub fn write_rfc3339_quoted(unix_ns: i128, out: &mut Vec<u8>) {
    thread_local! {
        static CACHE: std::cell::RefCell<(i128, Vec<u8>)> = const { std::cell::RefCell::new((i128::MIN, Vec::new())) };
    }
    let sec = unix_ns.div_euclid(1_000_000_000);
    let nanos = unix_ns.rem_euclid(1_000_000_000) as u32;
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != sec {
            let full = rfc3339_ns(sec * 1_000_000_000);
            // "2026-11-22T03:10:35Z" → "2026-11-22T03:10:35"
            c.1 = full
                .trim_end_matches('Z')
                .split('.')
                .next()
                .unwrap_or("")
                .as_bytes()
                .to_vec();
            c.0 = sec;
        }
        out.push(b'"');
        out.extend_from_slice(&c.1);
    });
    let mut frac = [b'0'; 10];
    frac[0] = b'.';
    let mut n = nanos;
    for i in (1..10).rev() {
        frac[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&frac);
    out.extend_from_slice(b"Z\"");
}

/// Appends the current wall-clock time, quoted RFC 3339 with ns.
pub fn write_now_quoted(out: &mut Vec<u8>) {
    write_rfc3339_quoted(clock_ns(libc::CLOCK_REALTIME), out);
}

/// Wall-clock Unix ns for a `bpf_ktime_get_ns()` value.
pub fn ktime_to_unix_ns(ktime_ns: u64) -> i128 {
    i128::from(ktime_ns) + monotonic_to_wall()
}

/// Now, as RFC 3339 with nanoseconds.
pub fn now_rfc3339() -> String {
    rfc3339_ns(clock_ns(libc::CLOCK_REALTIME))
}

/// "1.3ms", "850ns", "2.5s": a short human duration.
pub fn human_duration(ns: u64) -> String {
    let f = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}µs", f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.1}ms", f / 1e6)
    } else {
        format!("{:.2}s", f / 1e9)
    }
}

/// Parses "1.5ms", "250us", "2s", "1m", "100" (ns) into nanoseconds.
pub fn parse_duration_ns(text: &str) -> Option<i128> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult = match unit {
        "" | "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    let v = num.parse::<f64>().ok()?;
    Some((v * mult).round() as i128)
}

/// Parses a command-line duration where a bare number means seconds ("2" = 2 s, "500ms").
pub fn parse_cli_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let ns = if t.chars().all(|c| c.is_ascii_digit() || c == '.') && !t.is_empty() {
        t.parse::<f64>().ok().map(|s| (s * 1e9) as i128)
    } else {
        parse_duration_ns(t)
    };
    match ns {
        Some(ns) if ns >= 0 => Ok(std::time::Duration::from_nanos(ns as u64)),
        _ => Err(format!(
            "expected a duration like 2s, 500ms or 1m, got {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(parse_duration_ns("1.5ms"), Some(1_500_000));
        assert_eq!(parse_duration_ns("250us"), Some(250_000));
        assert_eq!(parse_duration_ns("3 parsecs"), None);
        assert_eq!(
            parse_cli_duration("2").unwrap(),
            std::time::Duration::from_secs(2)
        );
        assert!(parse_cli_duration("soon").is_err());
        let mut out = Vec::new();
        write_rfc3339_quoted(1_509_722_216_000_000_005, &mut out);
        write_rfc3339_quoted(1_509_722_216_890_551_865, &mut out);
        assert_eq!(
            out,
            b"\"2017-11-03T15:16:56.000000005Z\"\"2017-11-03T15:16:56.890551865Z\""
        );
        assert_eq!(human_duration(850), "850ns");
        assert_eq!(human_duration(1_300_000), "1.3ms");
        assert_eq!(
            rfc3339_ns(1_509_722_216_890_551_865),
            "2017-11-03T15:16:56.890551865Z"
        );
        // A timestamp taken now decodes to within a second of the wall clock.
        let now = ktime_to_unix_ns(monotonic_now_ns());
        assert!((now - clock_ns(libc::CLOCK_REALTIME)).abs() < 1_000_000_000);
    }
}
