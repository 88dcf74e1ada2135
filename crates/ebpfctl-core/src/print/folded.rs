//! `-o folded`: the entries of maps keyed by stack ids as folded stacks, the input of flame
//! graph tools (`flamegraph.pl`, inferno, speedscope): one line per key,
//! `comm;user frames;-;kernel frames COUNT`, outermost frame first, written once at exit.
use std::collections::BTreeMap;

use super::writer::Writer;
use super::{Entry, MapOut, Printer};
use crate::decode::Node;

/// Keeps the last snapshot of each stack-keyed map and folds it at exit; each line is a
/// record of its map (`MapOut::id`) for the writer's dropped counts.
#[derive(Default)]
pub struct FoldedPrinter {
    last: BTreeMap<String, (MapOut, Vec<Entry>)>,
}

impl FoldedPrinter {
    pub fn new() -> Self {
        Self::default()
    }
}

/// The count of an entry: the value if it is a number, else its first numeric member.
fn count(map: &MapOut, value: &[u8]) -> Option<f64> {
    map.value.root.number(value, 0).or_else(|| {
        map.value
            .fields("value")
            .iter()
            .find_map(|(_, n)| n.number(value, 0))
    })
}

/// One folded line for a key, or None when the key holds no frames at all.
pub fn fold(map: &MapOut, key: &[u8], value: &[u8]) -> Option<String> {
    let kd = map.key.as_ref()?;
    let mut names: Vec<String> = Vec::new();
    let mut user: Vec<String> = Vec::new();
    let mut kernel: Vec<String> = Vec::new();
    for (_, node) in kd.fields("key") {
        match node {
            Node::Str { .. } => {
                let s = node.text(key, 0);
                if !s.is_empty() {
                    names.push(s);
                }
            }
            Node::Stack { user: u, .. } => {
                let frames = node.frames(key, 0).unwrap_or_default();
                // Innermost first in the map; flame graphs want the root first.
                let labels = frames.iter().rev().map(|f| f.label());
                if *u {
                    user.extend(labels);
                } else {
                    kernel.extend(labels);
                }
            }
            _ => {}
        }
    }
    if user.is_empty() && kernel.is_empty() {
        return None;
    }
    let mut parts = names;
    parts.extend(user.iter().cloned());
    if !user.is_empty() && !kernel.is_empty() {
        parts.push("-".into());
    }
    parts.extend(kernel);
    let n = count(map, value).unwrap_or(0.0);
    // Frame names with spaces would end the stack early for the tools.
    let line = parts
        .iter()
        .map(|p| p.replace(' ', "_"))
        .collect::<Vec<_>>()
        .join(";");
    Some(format!("{line} {}", crate::plan::num(n)))
}

impl Printer for FoldedPrinter {
    fn event(&mut self, _: &mut Writer, _: &MapOut, _: &[u8]) {}

    fn snapshot(&mut self, _: &mut Writer, map: &MapOut, entries: &[Entry]) {
        self.last
            .insert(map.name.clone(), (map.clone(), entries.to_vec()));
    }

    fn lost(&mut self, _: &mut Writer, _: &MapOut, _: u64, _: u64) {}

    fn flush(&mut self, _: &mut Writer) {}

    fn finish(&mut self, out: &mut Writer) {
        for (map, entries) in self.last.values() {
            for (k, v) in entries {
                if let Some(line) = fold(map, k, v) {
                    let buf = out.buf();
                    buf.extend_from_slice(line.as_bytes());
                    buf.push(b'\n');
                    out.record(map.id);
                }
            }
        }
        out.flush();
    }
}
