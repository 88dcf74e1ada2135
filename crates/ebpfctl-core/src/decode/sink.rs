//! Where decoded values go: a JSON writer (the per-event hot path, no allocation per value)
//! and a plain-text writer (label values, table cells).

/// Receives one decoded value tree, depth first.
pub trait Sink {
    fn u64(&mut self, v: u64);
    fn i64(&mut self, v: i64);
    fn f64(&mut self, v: f64);
    fn bool(&mut self, v: bool);
    fn str(&mut self, s: &str);
    /// No value (JSON `null`; empty text).
    fn null(&mut self) {
        self.str("");
    }
    /// A wall-clock time (Unix ns), written as an RFC 3339 string.
    fn timestamp(&mut self, unix_ns: i128) {
        self.str(&super::time::rfc3339_ns(unix_ns));
    }
    fn begin_object(&mut self);
    fn key(&mut self, k: &str);
    fn end_object(&mut self);
    fn begin_array(&mut self);
    fn end_array(&mut self);
    /// A value that is already JSON (a container object).
    fn raw_json(&mut self, json: &[u8]);
    /// A cgroup id: the number (tables: the container's name when it is one's).
    fn cgroup_id(&mut self, id: u64) {
        self.u64(id);
    }
}

/// Writes compact JSON into a byte buffer. Commas are placed automatically.
pub struct JsonSink<'a> {
    pub out: &'a mut Vec<u8>,
    need_comma: bool,
}

impl<'a> JsonSink<'a> {
    /// A writer appending to `out`. `in_object` is true when `out` already holds an open
    /// object with at least one member (so the next key needs a comma).
    pub fn new(out: &'a mut Vec<u8>, need_comma: bool) -> Self {
        Self { out, need_comma }
    }

    fn sep(&mut self) {
        if self.need_comma {
            self.out.push(b',');
        }
    }
}

/// Bytes that need escaping inside a JSON string.
const ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Appends `s` as a JSON string literal.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !ESCAPE[b as usize] {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
            }
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

impl Sink for JsonSink<'_> {
    fn u64(&mut self, v: u64) {
        self.sep();
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self.need_comma = true;
    }
    fn i64(&mut self, v: i64) {
        self.sep();
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self.need_comma = true;
    }
    fn f64(&mut self, v: f64) {
        self.sep();
        if v.is_finite() {
            self.out.extend_from_slice(format!("{v}").as_bytes());
        } else {
            self.out.extend_from_slice(b"null");
        }
        self.need_comma = true;
    }
    fn bool(&mut self, v: bool) {
        self.sep();
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        self.need_comma = true;
    }
    fn null(&mut self) {
        self.sep();
        self.out.extend_from_slice(b"null");
        self.need_comma = true;
    }
    fn str(&mut self, s: &str) {
        self.sep();
        write_json_str(self.out, s);
        self.need_comma = true;
    }
    fn timestamp(&mut self, unix_ns: i128) {
        self.sep();
        super::time::write_rfc3339_quoted(unix_ns, self.out);
        self.need_comma = true;
    }
    fn begin_object(&mut self) {
        self.sep();
        self.out.push(b'{');
        self.need_comma = false;
    }
    fn key(&mut self, k: &str) {
        self.sep();
        write_json_str(self.out, k);
        self.out.push(b':');
        self.need_comma = false;
    }
    fn end_object(&mut self) {
        self.out.push(b'}');
        self.need_comma = true;
    }
    fn begin_array(&mut self) {
        self.sep();
        self.out.push(b'[');
        self.need_comma = false;
    }
    fn end_array(&mut self) {
        self.out.push(b']');
        self.need_comma = true;
    }
    fn raw_json(&mut self, json: &[u8]) {
        self.sep();
        self.out.extend_from_slice(json);
        self.need_comma = true;
    }
}

/// Writes scalars as plain text (strings unquoted); composites as compact JSON.
#[derive(Default)]
pub struct TextSink {
    pub out: String,
    json: Vec<u8>,
    depth: usize,
}

impl TextSink {
    fn scalar(&mut self, text: &str, json: impl FnOnce(&mut JsonSink<'_>)) {
        if self.depth == 0 {
            self.out.push_str(text);
        } else {
            let need = !matches!(self.json.last(), Some(b'{' | b'[' | b':'));
            json(&mut JsonSink::new(&mut self.json, need));
        }
    }
    fn open(&mut self, c: u8) {
        if self.depth > 0 && !matches!(self.json.last(), Some(b'{' | b'[' | b':')) {
            self.json.push(b',');
        }
        self.json.push(c);
        self.depth += 1;
    }
    fn close(&mut self, c: u8) {
        self.json.push(c);
        self.depth -= 1;
        if self.depth == 0 {
            self.out.push_str(&String::from_utf8_lossy(&self.json));
            self.json.clear();
        }
    }
}

impl Sink for TextSink {
    fn u64(&mut self, v: u64) {
        self.scalar(itoa::Buffer::new().format(v), |j| j.u64(v));
    }
    fn i64(&mut self, v: i64) {
        self.scalar(itoa::Buffer::new().format(v), |j| j.i64(v));
    }
    fn f64(&mut self, v: f64) {
        self.scalar(&format!("{v}"), |j| j.f64(v));
    }
    fn bool(&mut self, v: bool) {
        self.scalar(if v { "true" } else { "false" }, |j| j.bool(v));
    }
    fn str(&mut self, s: &str) {
        self.scalar(s, |j| j.str(s));
    }
    fn null(&mut self) {
        self.scalar("", |j| j.null());
    }
    fn begin_object(&mut self) {
        self.open(b'{');
    }
    fn key(&mut self, k: &str) {
        if !matches!(self.json.last(), Some(b'{')) {
            self.json.push(b',');
        }
        write_json_str(&mut self.json, k);
        self.json.push(b':');
    }
    fn end_object(&mut self) {
        self.close(b'}');
    }
    fn begin_array(&mut self) {
        self.open(b'[');
    }
    fn end_array(&mut self) {
        self.close(b']');
    }
    fn raw_json(&mut self, json: &[u8]) {
        let text = String::from_utf8_lossy(json);
        self.scalar(&text, |j| j.raw_json(json));
    }
    fn cgroup_id(&mut self, id: u64) {
        if self.depth == 0 {
            // A table cell: the container's name, else the number.
            let mut name = None;
            if let Some(n) = super::container_names() {
                n.lookup(id, &mut |_, display| name = Some(display.to_string()));
            }
            if let Some(n) = name {
                self.out.push_str(&n);
                return;
            }
        }
        self.u64(id);
    }
}
