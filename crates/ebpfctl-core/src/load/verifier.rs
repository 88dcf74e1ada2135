//! Explaining a verifier rejection: the decisive log lines, the failing instruction with its
//! C source line (the kernel annotates the log from BTF line info; kernels before 6.4 print
//! the line's text only, and [`locate`] names its file and line from the object), and a
//! one-line hint.
use std::fmt;

use regex::Regex;

use crate::object::lines::SourceLines;

/// What went wrong loading one program, distilled from libbpf's and the verifier's logs.
#[derive(Debug, Clone, Default)]
pub struct VerifierReport {
    pub program: String,
    /// libbpf's summary, e.g. "-EACCES".
    pub error: String,
    /// The last lines of the verifier log before its statistics.
    pub decisive: Vec<String>,
    /// The C source line of the failing instruction ("x = *p; @ probe.bpf.c:42").
    pub source: Option<String>,
    /// The failing instruction ("12: (61) r1 = *(u32 *)(r0 +0)").
    pub insn: Option<String>,
    pub hint: Option<&'static str>,
}

impl fmt::Display for VerifierReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the verifier rejected program {} ({})",
            self.program, self.error
        )?;
        if let Some(s) = &self.source {
            write!(f, "\n  at: {s}")?;
        }
        if let Some(i) = &self.insn {
            write!(f, "\n  instruction: {i}")?;
        }
        for l in &self.decisive {
            write!(f, "\n  | {l}")?;
        }
        if let Some(h) = self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

const HINTS: &[(&str, &str)] = &[
    // libbpf poisons an access whose CO-RE relocation found nothing in the kernel's BTF.
    (r"failed to resolve CO-RE relocation|<invalid CO-RE relocation>",
     "a CO-RE relocation found no match in this kernel's BTF (the field or type named above was renamed or removed since the object was built): guard the access with bpf_core_field_exists() or build the object for this kernel"),
    (r"_or_null'|invalid mem access 'scalar'|invalid mem access 'map_value_or_null'",
     "missing NULL check (test the pointer from bpf_map_lookup_elem / bpf_ringbuf_reserve before use) or use after bpf_ringbuf_submit"),
    (r"back-edge from insn|infinite loop detected|loop is not bounded|unbounded loop",
     "unbounded loop: give the loop a constant bound (for (i = 0; i < N && ...; i++)) or use bpf_loop()"),
    (r"combined stack size|stack size of|invalid (write|read) to stack R10 off=-(5[2-9][0-9]|[6-9][0-9][0-9]|\d{4,})",
     "stack too large (512 bytes max): put big structs in a per-CPU array map or reserve them in the ring buffer"),
    (r"BPF program is too large|too many instructions|The sequence of \d+ jumps is too complex|complexity limit",
     "program too large or too complex for the verifier: split it (tail calls, bpf_loop) or reduce unrolling"),
    (r"cannot call GPL-restricted function",
     "helper is GPL-only: declare char LICENSE[] SEC(\"license\") = \"GPL\";"),
    (r"cannot use helper bpf_probe_write_user|unknown func bpf_probe_write_user",
     PROBE_WRITE_USER),
    (r"unknown func|helper call is not allowed|program of this type cannot use helper|not allowed in this program type",
     "helper not allowed for this program type (or unknown to this kernel): use another helper or program type"),
    (r"invalid access to packet",
     "packet access without a bounds check: compare data + offset against data_end first"),
    (r"!read_ok", "a register is read before it is set"),
    (r"dereference of modified ctx ptr",
     "context fields cannot be read through a moved pointer: copy them with bpf_probe_read_kernel() or read each field directly"),
    (r"invalid indirect read from stack",
     "reading uninitialised stack memory: zero-initialise the struct (= {}) or __builtin_memset it"),
    (r"R\d+ (invalid mem access|min value is negative|unbounded memory access)",
     "out-of-bounds or unchecked access: bound the index/offset with an explicit check before using it"),
];

/// `bpf_probe_write_user` exists in every tracing program type; the kernel withholds it from
/// a loader without CAP_SYS_ADMIN and whenever it is locked down (`security_locked_down
/// (LOCKDOWN_BPF_WRITE_USER)`, from lockdown=integrity on).
const PROBE_WRITE_USER: &str = "the kernel refuses bpf_probe_write_user: kernel lockdown (integrity or confidentiality, see /sys/kernel/security/lockdown) forbids it, as do program types other than tracing ones and a loader without CAP_SYS_ADMIN; --allow-unsafe-helpers cannot lift what the kernel refuses, so this probe cannot run here";
const PROBE_WRITE_USER_INTEGRITY: &str = "this kernel is locked down (integrity), and lockdown forbids bpf_probe_write_user; --allow-unsafe-helpers cannot lift what the kernel refuses, so this probe cannot run here";
const PROBE_WRITE_USER_CONFIDENTIALITY: &str = "this kernel is locked down (confidentiality), and lockdown forbids bpf_probe_write_user; --allow-unsafe-helpers cannot lift what the kernel refuses, so this probe cannot run here";

/// The active lockdown mode (`[integrity]` in /sys/kernel/security/lockdown), when securityfs
/// is mounted.
fn lockdown_mode() -> Option<String> {
    let text = std::fs::read_to_string("/sys/kernel/security/lockdown").ok()?;
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    Some(text[start..end].to_string())
}

/// Builds a report from the captured libbpf output for `program`.
pub fn explain(program: &str, error: &str, log: &[String]) -> VerifierReport {
    // The kernel's log sits between libbpf's BEGIN/END markers.
    let text: Vec<&str> = log.iter().flat_map(|l| l.lines()).collect();
    let start = text
        .iter()
        .position(|l| l.contains("BEGIN PROG LOAD LOG"))
        .map_or(0, |i| i + 1);
    let end = text
        .iter()
        .rposition(|l| l.contains("END PROG LOAD LOG"))
        .unwrap_or(text.len());
    let body: Vec<&str> = text
        .get(start..end.max(start))
        .unwrap_or(&[])
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| !l.is_empty())
        .collect();
    // Drop the statistics tail ("processed N insns ...", "verification time").
    let stop = body
        .iter()
        .position(|l| l.starts_with("processed ") || l.starts_with("verification time"))
        .unwrap_or(body.len());
    let relevant = &body[..stop];
    let decisive: Vec<String> = relevant
        .iter()
        .rev()
        .take(4)
        .rev()
        .map(|s| s.to_string())
        .collect();
    let insn_re = Regex::new(r"^\d+: \([0-9a-f]{2}\)").expect("static regex");
    let insn = relevant
        .iter()
        .rev()
        .find(|l| insn_re.is_match(l))
        .map(|s| s.to_string());
    let source = relevant
        .iter()
        .rev()
        .find(|l| l.starts_with("; "))
        .map(|s| s.trim_start_matches("; ").to_string());
    let joined = body.join("\n");
    let hint = HINTS
        .iter()
        .find(|(pat, _)| Regex::new(pat).expect("static regex").is_match(&joined))
        .map(|(_, h)| *h)
        .map(
            |h| match (h == PROBE_WRITE_USER, lockdown_mode().as_deref()) {
                (true, Some("integrity")) => PROBE_WRITE_USER_INTEGRITY,
                (true, Some("confidentiality")) => PROBE_WRITE_USER_CONFIDENTIALITY,
                _ => h,
            },
        );
    VerifierReport {
        program: program.to_string(),
        error: error.to_string(),
        decisive,
        source,
        insn,
        hint,
    }
}

/// Gives `report` the `text @ file:line` of its failing instruction from the object's own
/// line records when the kernel's log lacks the location (before 6.4 it prints `; text`
/// only). The instruction index is the loaded program's: [`SourceLines`] lays the program
/// out as libbpf did. When the log has a text, ours must be the same line, or, if the
/// layout disagrees, the one line of the program with that text; otherwise the report
/// keeps the kernel's text alone rather than name a wrong line.
pub fn locate(report: &mut VerifierReport, lines: &SourceLines) {
    if report.source.as_deref().is_some_and(|s| s.contains(" @ ")) {
        return;
    }
    let insn = report
        .insn
        .as_deref()
        .and_then(|i| i.split(':').next())
        .and_then(|n| n.parse::<u64>().ok());
    let found = insn.and_then(|i| lines.line(&report.program, i));
    let logged = report.source.as_deref().map(str::trim);
    let located = match (logged, found) {
        (None, Some(f)) => Some(f.verifier_style()),
        (Some(text), Some(f)) if f.info.text.trim() == text => Some(f.verifier_style()),
        (Some(text), _) => lines.unique_line_with_text(&report.program, text),
        (None, None) => None,
    };
    if let Some(l) = located {
        report.source = Some(l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_check_hint_and_source() {
        let log: Vec<String> = [
            "libbpf: prog 'h': BPF program load failed: -EACCES",
            "libbpf: prog 'h': -- BEGIN PROG LOAD LOG --",
            "0: R1=ctx() R10=fp0",
            "; e->pid = 1; @ bad.bpf.c:20",
            "5: (62) *(u32 *)(r0 +0) = 1",
            "R0 invalid mem access 'ringbuf_mem_or_null'",
            "processed 6 insns (limit 1000000) max_states_per_insn 0",
            "-- END PROG LOAD LOG --",
        ]
        .map(String::from)
        .to_vec();
        let r = explain("h", "-EACCES", &log);
        assert_eq!(r.source.as_deref(), Some("e->pid = 1; @ bad.bpf.c:20"));
        assert_eq!(r.insn.as_deref(), Some("5: (62) *(u32 *)(r0 +0) = 1"));
        assert!(r.hint.unwrap().contains("NULL check"));
        assert!(r.decisive.last().unwrap().contains("invalid mem access"));
    }

    #[test]
    fn unresolved_core_relocation_says_the_kernel_lacks_the_field() {
        // As libbpf-tools' runqlen reports it on a kernel without cfs_rq.nr_running.
        let log: Vec<String> = [
            "libbpf: prog 'do_sample': -- BEGIN PROG LOAD LOG --",
            "7: (85) call bpf_probe_read_kernel#113        ; R0=scalar() fp-16=mmmmmmmm",
            "8: <invalid CO-RE relocation>",
            "failed to resolve CO-RE relocation <byte_off> [336] struct cfs_rq.nr_running (0:1 @ offset 16)",
            "processed 9 insns (limit 1000000) max_states_per_insn 0",
            "-- END PROG LOAD LOG --",
        ]
        .map(String::from)
        .to_vec();
        let r = explain("do_sample", "-EINVAL", &log);
        assert!(r.hint.unwrap().contains("bpf_core_field_exists"), "{r}");
        assert!(r.decisive.last().unwrap().contains("cfs_rq.nr_running"));
    }
}
