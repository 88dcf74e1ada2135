//! Byte offsets of the Go struct fields the probe reads: from the binary's DWARF when it
//! has some, else from a built-in table by Go version (fields move between releases).
use std::borrow::Cow;
use std::collections::HashMap;

use object::{Object, ObjectSection};

use super::goelf::GoVersion;

/// Mirror of `struct obs_offsets` in observe.h (u32 each, `NO_OFFSET` = not known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Offsets {
    pub req_method: u32,
    pub req_url: u32,
    pub req_proto: u32,
    pub req_host: u32,
    pub req_remote_addr: u32,
    pub req_tls: u32,
    pub url_scheme: u32,
    pub url_host: u32,
    pub url_path: u32,
    pub url_raw_query: u32,
    pub resp_status_code: u32,
    pub resp_proto: u32,
    pub resp_content_length: u32,
    pub sresp_conn: u32,
    pub sresp_status: u32,
    pub sresp_written: u32,
    pub conn_bufr: u32,
    pub bufio_buf: u32,
    pub bufio_r: u32,
    pub g_panic: u32,
    pub panic_arg: u32,
    pub h2_rws: u32,
    pub h2_status: u32,
    pub h2_wrote_bytes: u32,
    pub h2_stream: u32,
    pub h2_fields: u32,
    pub req_request_uri: u32,
}

pub const NO_OFFSET: u32 = u32::MAX;

/// (struct, field, setter) for every field the probe reads.
type Setter = fn(&mut Offsets) -> &mut u32;
const FIELDS: &[(&str, &str, Setter)] = &[
    ("net/http.Request", "Method", |o| &mut o.req_method),
    ("net/http.Request", "URL", |o| &mut o.req_url),
    ("net/http.Request", "Proto", |o| &mut o.req_proto),
    ("net/http.Request", "Host", |o| &mut o.req_host),
    ("net/http.Request", "RemoteAddr", |o| &mut o.req_remote_addr),
    ("net/http.Request", "TLS", |o| &mut o.req_tls),
    ("net/http.Request", "RequestURI", |o| &mut o.req_request_uri),
    ("net/url.URL", "Scheme", |o| &mut o.url_scheme),
    ("net/url.URL", "Host", |o| &mut o.url_host),
    ("net/url.URL", "Path", |o| &mut o.url_path),
    ("net/url.URL", "RawQuery", |o| &mut o.url_raw_query),
    ("net/http.Response", "StatusCode", |o| {
        &mut o.resp_status_code
    }),
    ("net/http.Response", "Proto", |o| &mut o.resp_proto),
    ("net/http.Response", "ContentLength", |o| {
        &mut o.resp_content_length
    }),
    ("net/http.response", "conn", |o| &mut o.sresp_conn),
    ("net/http.response", "status", |o| &mut o.sresp_status),
    ("net/http.response", "written", |o| &mut o.sresp_written),
    ("net/http.conn", "bufr", |o| &mut o.conn_bufr),
    ("bufio.Reader", "buf", |o| &mut o.bufio_buf),
    ("bufio.Reader", "r", |o| &mut o.bufio_r),
    ("runtime.g", "_panic", |o| &mut o.g_panic),
    ("runtime._panic", "arg", |o| &mut o.panic_arg),
];

/// The HTTP/2 server's fields (`net/http/internal/http2` since Go 1.27, bundled into
/// net/http as `http2…` before). Optional: a binary without them (no HTTP/2 server code,
/// or a release the table does not know) only loses HTTP/2 server events.
const H2_FIELDS: &[(&str, &str, Setter)] = &[
    ("net/http.http2responseWriter", "rws", |o| &mut o.h2_rws),
    ("net/http/internal/http2.responseWriter", "rws", |o| {
        &mut o.h2_rws
    }),
    ("net/http.http2responseWriterState", "status", |o| {
        &mut o.h2_status
    }),
    (
        "net/http/internal/http2.responseWriterState",
        "status",
        |o| &mut o.h2_status,
    ),
    ("net/http.http2responseWriterState", "wroteBytes", |o| {
        &mut o.h2_wrote_bytes
    }),
    (
        "net/http/internal/http2.responseWriterState",
        "wroteBytes",
        |o| &mut o.h2_wrote_bytes,
    ),
];

/// Where an HTTP/2 server request's `traceparent` is read from (optional too: without them
/// only that header is missed).
const H2_TRACE_FIELDS: &[(&str, &str, Setter)] = &[
    ("net/http.http2responseWriterState", "stream", |o| {
        &mut o.h2_stream
    }),
    (
        "net/http/internal/http2.responseWriterState",
        "stream",
        |o| &mut o.h2_stream,
    ),
    ("net/http.http2MetaHeadersFrame", "Fields", |o| {
        &mut o.h2_fields
    }),
    ("net/http/internal/http2.MetaHeadersFrame", "Fields", |o| {
        &mut o.h2_fields
    }),
];

/// Every (struct, field) the DWARF reader looks for, required ones first.
fn all_fields() -> impl Iterator<Item = &'static (&'static str, &'static str, Setter)> {
    FIELDS.iter().chain(H2_FIELDS).chain(H2_TRACE_FIELDS)
}

/// Where the offsets came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetSource {
    Dwarf,
    Table,
}

impl Offsets {
    fn unknown() -> Offsets {
        let mut o = Offsets::default();
        for (_, _, set) in all_fields() {
            *set(&mut o) = NO_OFFSET;
        }
        o
    }

    /// Whether the HTTP/2 server's fields are known.
    pub fn has_h2(&self) -> bool {
        [self.h2_rws, self.h2_status, self.h2_wrote_bytes]
            .iter()
            .all(|&o| o != NO_OFFSET)
    }

    /// Whether an HTTP/2 server request's `traceparent` can be read.
    pub fn has_h2_trace(&self) -> bool {
        self.has_h2() && self.h2_stream != NO_OFFSET && self.h2_fields != NO_OFFSET
    }

    /// The required fields still unknown, as `struct.field`.
    pub fn missing(&self) -> Vec<String> {
        let mut o = *self;
        FIELDS
            .iter()
            .filter(|(_, _, set)| *set(&mut o) == NO_OFFSET)
            .map(|(s, f, _)| format!("{s}.{f}"))
            .collect()
    }

    /// The bytes of `struct obs_offsets` (observe.h), in its order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let o = self;
        [
            o.req_method,
            o.req_url,
            o.req_proto,
            o.req_host,
            o.req_remote_addr,
            o.req_tls,
            o.url_scheme,
            o.url_host,
            o.url_path,
            o.url_raw_query,
            o.resp_status_code,
            o.resp_proto,
            o.resp_content_length,
            o.sresp_conn,
            o.sresp_status,
            o.sresp_written,
            o.conn_bufr,
            o.bufio_buf,
            o.bufio_r,
            o.g_panic,
            o.panic_arg,
            o.h2_rws,
            o.h2_status,
            o.h2_wrote_bytes,
            o.h2_stream,
            o.h2_fields,
            o.req_request_uri,
        ]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect()
    }
}

/// Offsets from DWARF; `None` when the binary has no DWARF or lacks some field.
pub fn from_dwarf(file: &object::File<'_>) -> Option<Offsets> {
    let structs: Vec<&str> = all_fields().map(|(s, _, _)| *s).collect();
    let members = dwarf_members(file, &structs)?;
    let mut out = Offsets::unknown();
    for (s, f, set) in all_fields() {
        if let Some(&off) = members.get(&(s.to_string(), f.to_string())) {
            *set(&mut out) = off as u32;
        }
    }
    out.missing().is_empty().then_some(out)
}

/// Byte offsets of the members of the named structs in the binary's DWARF, by (struct,
/// member); `None` without DWARF.
pub fn dwarf_members(
    file: &object::File<'_>,
    structs: &[&str],
) -> Option<HashMap<(String, String), u64>> {
    file.section_by_name(".debug_info")?;
    let load = |id: gimli::SectionId| -> Result<Cow<'_, [u8]>, gimli::Error> {
        Ok(file
            .section_by_name(id.name())
            .and_then(|s| s.uncompressed_data().ok())
            .unwrap_or(Cow::Borrowed(&[])))
    };
    let owned = gimli::DwarfSections::load(load).ok()?;
    let dwarf = owned.borrow(|s| gimli::EndianSlice::new(s, gimli::LittleEndian));
    let mut out = HashMap::new();
    let mut units = dwarf.units();
    while let Ok(Some(header)) = units.next() {
        let Ok(unit) = dwarf.unit(header) else {
            continue;
        };
        let mut entries = unit.entries();
        let mut depth: isize = 0;
        let mut current: Option<(String, isize)> = None;
        while let Ok(Some((delta, entry))) = entries.next_dfs() {
            depth += delta;
            if let Some((_, d)) = &current {
                if depth <= *d {
                    current = None;
                }
            }
            let name = || -> Option<String> {
                let attr = entry.attr_value(gimli::DW_AT_name).ok()??;
                let s = dwarf.attr_string(&unit, attr).ok()?;
                Some(s.to_string_lossy().into_owned())
            };
            if entry.tag() == gimli::DW_TAG_structure_type {
                if let Some(n) = name() {
                    if structs.contains(&n.as_str()) {
                        current = Some((n, depth));
                    }
                }
            } else if entry.tag() == gimli::DW_TAG_member {
                if let Some((sname, d)) = &current {
                    if depth == d + 1 {
                        if let Some(fname) = name() {
                            let loc = entry
                                .attr_value(gimli::DW_AT_data_member_location)
                                .ok()
                                .flatten();
                            if let Some(off) = loc.and_then(|v| v.udata_value()) {
                                out.insert((sname.clone(), fname), off);
                            }
                        }
                    }
                }
            }
        }
    }
    Some(out)
}

/// Built-in offsets for binaries without DWARF, measured from the DWARF of binaries built
/// with Go 1.19, 1.21, 1.22, 1.23, 1.24, 1.25, 1.26 and 1.27 (the integration tests compare
/// this table with the DWARF of the toolchains they build with). Of the fields read here,
/// 1.26 moved url.URL.RawQuery and runtime._panic.arg, and 1.27 moved
/// net/http.response.status and .written
/// (Request.ctx moved in 1.23 but is not read). 1.17 and 1.18 are assumed to share 1.19's
/// layout (no toolchain to measure them here). Newer releases get no entry (their stripped
/// binaries are refused with a clear error) until measured.
pub fn from_table(v: GoVersion) -> Option<Offsets> {
    // Releases after the newest measured one may have moved fields: refuse rather than guess.
    if v < GoVersion::MIN_SUPPORTED || v.major != 1 || v.minor > 27 {
        return None;
    }
    let mut o = Offsets {
        req_method: 0,
        req_url: 16,
        req_proto: 24,
        req_host: 128,
        req_remote_addr: 176,
        req_tls: 208,
        req_request_uri: 192,
        url_scheme: 0,
        url_host: 40,
        url_path: 56,
        url_raw_query: 96,
        resp_status_code: 16,
        resp_proto: 24,
        resp_content_length: 80,
        sresp_conn: 0,
        sresp_status: 120,
        sresp_written: 104,
        conn_bufr: 80,
        bufio_buf: 0,
        bufio_r: 40,
        g_panic: 32,
        panic_arg: 8,
        h2_rws: 0,
        h2_status: 80,
        h2_wrote_bytes: 104,
        // The first field of the writer's state; the one after the frame's *HeadersFrame.
        h2_stream: 0,
        h2_fields: 8,
    };
    let at_least = |minor| {
        v >= GoVersion {
            major: 1,
            minor,
            patch: 0,
        }
    };
    // HTTP/2's responseWriterState lost a field in 1.21 (1.20 is unmeasured: no HTTP/2
    // server events rather than a guess) and moved to net/http/internal/http2 in 1.27.
    if at_least(20) {
        (o.h2_status, o.h2_wrote_bytes) = (NO_OFFSET, NO_OFFSET);
    }
    if at_least(21) {
        (o.h2_status, o.h2_wrote_bytes) = (72, 96);
    }
    if at_least(26) {
        o.url_raw_query = 88;
        // runtime._panic lost argp.
        o.panic_arg = 0;
    }
    if at_least(27) {
        o.sresp_written = 112;
        o.sresp_status = 128;
        (o.h2_status, o.h2_wrote_bytes) = (240, 264);
    }
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(minor: u32) -> GoVersion {
        GoVersion {
            major: 1,
            minor,
            patch: 0,
        }
    }

    #[test]
    fn table_by_version() {
        assert_eq!(from_table(v(16)), None);
        assert_eq!(from_table(v(28)), None);
        let o19 = from_table(v(19)).unwrap();
        let o27 = from_table(v(27)).unwrap();
        assert_eq!((o19.sresp_status, o19.sresp_written), (120, 104));
        assert_eq!((o27.sresp_status, o27.sresp_written), (128, 112));
        assert!(o19.missing().is_empty());
        assert_eq!(o19.to_bytes().len(), 27 * 4);
        assert!(o19.has_h2_trace() && !from_table(v(20)).unwrap().has_h2_trace());
        assert_eq!((o19.h2_status, o19.h2_wrote_bytes), (80, 104));
        assert!(!from_table(v(20)).unwrap().has_h2());
        assert_eq!(from_table(v(23)).unwrap().h2_status, 72);
        assert_eq!((o27.h2_status, o27.h2_wrote_bytes), (240, 264));
        assert_eq!(o19.url_raw_query, 96);
        assert_eq!(from_table(v(26)).unwrap().url_raw_query, 88);
    }
}
