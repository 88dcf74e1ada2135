//! JSON lines on stdout (schema: docs/json.md). The event path writes straight into a
//! buffer: no intermediate values, u64 exact.
use std::io::Write;

use super::{Entry, MapOut, Printer};
use crate::decode::{sink::write_json_str, time, JsonSink, Sink};

/// Writes one JSON object per event / snapshot entry / loss notice.
pub struct JsonPrinter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> JsonPrinter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            buf: Vec::with_capacity(1 << 16),
        }
    }

    fn head(&mut self, map: &MapOut) {
        self.buf.extend_from_slice(b"{\"_map\":");
        write_json_str(&mut self.buf, &map.display);
        self.buf.extend_from_slice(b",\"_time\":");
        time::write_now_quoted(&mut self.buf);
    }

    fn end(&mut self) {
        self.buf.extend_from_slice(b"}\n");
        if self.buf.len() >= 1 << 16 {
            let _ = self.out.write_all(&self.buf);
            self.buf.clear();
        }
    }
}

impl<W: Write> Printer for JsonPrinter<W> {
    fn event(&mut self, map: &MapOut, data: &[u8]) {
        self.head(map);
        if map.raw {
            // No type to decode with: the length and the bytes.
            self.buf.extend_from_slice(b",\"_len\":");
            self.buf
                .extend_from_slice(itoa::Buffer::new().format(data.len()).as_bytes());
            self.buf.extend_from_slice(b",\"_hex\":\"");
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for b in data {
                self.buf.push(HEX[(b >> 4) as usize]);
                self.buf.push(HEX[(b & 0xf) as usize]);
            }
            self.buf.push(b'"');
        } else {
            map.value
                .write_fields(data, "value", &mut JsonSink::new(&mut self.buf, true));
        }
        self.end();
    }

    fn iter_text(&mut self, prog: &str, text: &str) {
        for line in text.lines() {
            self.buf.extend_from_slice(b"{\"_iter\":");
            write_json_str(&mut self.buf, prog);
            self.buf.extend_from_slice(b",\"_time\":");
            time::write_now_quoted(&mut self.buf);
            self.buf.extend_from_slice(b",\"text\":");
            write_json_str(&mut self.buf, line);
            self.end();
        }
    }

    fn snapshot(&mut self, map: &MapOut, entries: &[Entry]) {
        // A value member named like a key member would repeat a JSON key: nest the value then.
        let clash = map.key.as_ref().is_some_and(|kd| {
            let keys: Vec<&str> = kd.fields("key").iter().map(|(n, _)| *n).collect();
            map.value
                .fields("value")
                .iter()
                .any(|(n, _)| keys.contains(n))
        });
        for (k, v) in entries {
            self.head(map);
            let mut sink = JsonSink::new(&mut self.buf, true);
            if let Some(kd) = &map.key {
                kd.write_fields(k, "key", &mut sink);
            }
            if clash {
                sink.key("value");
                map.value.root.render(v, 0, &mut sink);
            } else {
                map.value.write_fields(v, "value", &mut sink);
            }
            self.end();
        }
    }

    fn lost(&mut self, map: &MapOut, new: u64, total: u64) {
        self.head(map);
        self.buf.extend_from_slice(b",\"_lost\":");
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(new).as_bytes());
        self.buf.extend_from_slice(b",\"_lost_total\":");
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(total).as_bytes());
        self.end();
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.out.write_all(&self.buf);
            self.buf.clear();
        }
        let _ = self.out.flush();
    }
}
