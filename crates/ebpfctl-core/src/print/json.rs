//! JSON lines on stdout (schema: docs/json.md). The event path writes straight into the
//! writer's buffer: no intermediate values, u64 exact.
use super::writer::{Source, Writer};
use super::{Entry, MapOut, Printer};
use crate::decode::{sink::write_json_str, time, JsonSink, Sink};

/// Writes one JSON object per event / snapshot entry / loss notice; each is a record of its
/// map (`MapOut::id`) for the writer's dropped counts.
#[derive(Debug, Default)]
pub struct JsonPrinter;

fn head(buf: &mut Vec<u8>, map: &MapOut) {
    buf.extend_from_slice(b"{\"_map\":");
    write_json_str(buf, &map.display);
    // The unit of the map's numbers as the probe records them (`ebpfctl:unit` tag).
    if let Some(u) = map.meta.unit {
        buf.extend_from_slice(b",\"_unit\":");
        write_json_str(buf, u.as_str());
    }
    buf.extend_from_slice(b",\"_time\":");
    time::write_now_quoted(buf);
}

fn end(out: &mut Writer, map: &MapOut) {
    out.buf().extend_from_slice(b"}\n");
    out.record(map.id);
}

impl Printer for JsonPrinter {
    fn event(&mut self, out: &mut Writer, map: &MapOut, data: &[u8]) {
        let buf = out.buf();
        head(buf, map);
        if map.raw {
            // No type to decode with: the length and the bytes.
            buf.extend_from_slice(b",\"_len\":");
            buf.extend_from_slice(itoa::Buffer::new().format(data.len()).as_bytes());
            buf.extend_from_slice(b",\"_hex\":\"");
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for b in data {
                buf.push(HEX[(b >> 4) as usize]);
                buf.push(HEX[(b & 0xf) as usize]);
            }
            buf.push(b'"');
        } else {
            map.value
                .write_fields(data, "value", &mut JsonSink::new(buf, true));
        }
        end(out, map);
    }

    fn iter_text(&mut self, out: &mut Writer, src: Source, prog: &str, text: &str) {
        for line in text.lines() {
            let buf = out.buf();
            buf.extend_from_slice(b"{\"_iter\":");
            write_json_str(buf, prog);
            buf.extend_from_slice(b",\"_time\":");
            time::write_now_quoted(buf);
            buf.extend_from_slice(b",\"text\":");
            write_json_str(buf, line);
            buf.extend_from_slice(b"}\n");
            out.record(src);
        }
    }

    fn snapshot(&mut self, out: &mut Writer, map: &MapOut, entries: &[Entry]) {
        // A value member named like a key member would repeat a JSON key: nest the value then.
        let clash = map.key.as_ref().is_some_and(|kd| {
            let keys: Vec<&str> = kd.fields("key").iter().map(|(n, _)| *n).collect();
            map.value
                .fields("value")
                .iter()
                .any(|(n, _)| keys.contains(n))
        });
        for (k, v) in entries {
            let buf = out.buf();
            head(buf, map);
            let mut sink = JsonSink::new(buf, true);
            if let Some(kd) = &map.key {
                kd.write_fields(k, "key", &mut sink);
            }
            if clash {
                sink.key("value");
                map.value.root.render(v, 0, &mut sink);
            } else {
                map.value.write_fields(v, "value", &mut sink);
            }
            end(out, map);
        }
    }

    fn lost(&mut self, out: &mut Writer, map: &MapOut, new: u64, total: u64) {
        let buf = out.buf();
        head(buf, map);
        buf.extend_from_slice(b",\"_lost\":");
        buf.extend_from_slice(itoa::Buffer::new().format(new).as_bytes());
        buf.extend_from_slice(b",\"_lost_total\":");
        buf.extend_from_slice(itoa::Buffer::new().format(total).as_bytes());
        end(out, map);
    }

    fn flush(&mut self, out: &mut Writer) {
        out.flush();
    }
}
