//! Helpers and kfuncs that change the system being traced, found by reading each program's
//! instructions (never the kernel). `run` refuses an object that calls one unless
//! `--allow-unsafe-helpers` is given; `inspect` lists them. docs/security.md has the full list,
//! with the helpers considered and left allowed, and why.
//!
//! A call is `BPF_JMP | BPF_CALL` (opcode 0x85). In an object file, before libbpf relocates it:
//! `src_reg` 0 is a helper, `imm` its id; `src_reg` 1 with a relocation against an undefined
//! symbol is a kfunc (libbpf turns it into `BPF_PSEUDO_KFUNC_CALL`), named by the symbol; with
//! a relocation against a function in `.text`, or none, it is a call to a subprogram, whose own
//! calls count for the caller. A `ld_imm64` relocated against a function (a callback for
//! `bpf_loop`, `bpf_for_each_map_elem`, timers) makes that function reachable too.
use std::collections::HashSet;

use super::elf::{self, Elf};

/// A helper or kfunc that changes the traced system, and what it does to it.
#[derive(Debug, Clone, Copy)]
pub struct Unsafe {
    /// As written in C (`bpf_send_signal`).
    pub name: &'static str,
    /// The helper id (`enum bpf_func_id`); `None` for a kfunc, which is known by name only.
    pub helper_id: Option<u32>,
    /// What it changes, completing "calls NAME, which ...".
    pub effect: &'static str,
}

const fn helper(name: &'static str, id: u32, effect: &'static str) -> Unsafe {
    Unsafe {
        name,
        helper_id: Some(id),
        effect,
    }
}

const fn kfunc(name: &'static str, effect: &'static str) -> Unsafe {
    Unsafe {
        name,
        helper_id: None,
        effect,
    }
}

/// Refused without `--allow-unsafe-helpers`. Helper ids from libbpf-sys (the kernel's
/// `include/uapi/linux/bpf.h`); kfunc names from the kernel's BTF (`bpf_kfunc` decl tags).
pub const UNSAFE: &[Unsafe] = &[
    helper(
        "bpf_probe_write_user",
        libbpf_sys::BPF_FUNC_probe_write_user,
        "writes into the memory of the traced process",
    ),
    helper(
        "bpf_override_return",
        libbpf_sys::BPF_FUNC_override_return,
        "makes a kernel function return an error it did not produce",
    ),
    helper(
        "bpf_send_signal",
        libbpf_sys::BPF_FUNC_send_signal,
        "sends signals, SIGKILL included, to the traced process",
    ),
    helper(
        "bpf_send_signal_thread",
        libbpf_sys::BPF_FUNC_send_signal_thread,
        "sends signals, SIGKILL included, to the traced thread",
    ),
    helper(
        "bpf_sys_bpf",
        libbpf_sys::BPF_FUNC_sys_bpf,
        "runs bpf() syscall commands (loads programs, changes maps) from inside BPF",
    ),
    helper(
        "bpf_sys_close",
        libbpf_sys::BPF_FUNC_sys_close,
        "closes a file descriptor of the calling process",
    ),
    helper(
        "bpf_set_retval",
        libbpf_sys::BPF_FUNC_set_retval,
        "changes the return value of the system call the hook runs in",
    ),
    helper(
        "bpf_sysctl_set_new_value",
        libbpf_sys::BPF_FUNC_sysctl_set_new_value,
        "replaces the value a process writes to a sysctl",
    ),
    helper(
        "bpf_bprm_opts_set",
        libbpf_sys::BPF_FUNC_bprm_opts_set,
        "changes how an executed program starts (secure-exec mode)",
    ),
    kfunc(
        "bpf_send_signal_task",
        "sends signals, SIGKILL included, to any process",
    ),
    kfunc("bpf_set_dentry_xattr", "sets extended attributes of files"),
    kfunc(
        "bpf_set_dentry_xattr_locked",
        "sets extended attributes of files",
    ),
    kfunc(
        "bpf_remove_dentry_xattr",
        "removes extended attributes of files",
    ),
    kfunc(
        "bpf_remove_dentry_xattr_locked",
        "removes extended attributes of files",
    ),
    kfunc("bpf_sock_destroy", "aborts sockets of other processes"),
];

/// One program's call to an [`UNSAFE`] helper or kfunc.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UnsafeCall {
    /// The program (C function) whose code, or whose subprograms' code, makes the call.
    pub program: String,
    pub section: String,
    /// The helper or kfunc, as written in C.
    pub function: String,
    /// `helper` or `kfunc`.
    pub kind: &'static str,
    pub effect: &'static str,
}

impl std::fmt::Display for UnsafeCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "program {} ({}) calls {}, which {}",
            self.program, self.section, self.function, self.effect
        )
    }
}

/// All of `calls` on one line, grouped by program: "program p (sec) calls bpf_a (what it
/// does) and bpf_b (...); program q ...".
pub fn describe(calls: &[UnsafeCall]) -> String {
    let mut programs: Vec<(&str, &str, Vec<String>)> = Vec::new();
    for c in calls {
        let what = format!("{} ({})", c.function, c.effect);
        match programs
            .iter_mut()
            .find(|(p, s, _)| *p == c.program && *s == c.section)
        {
            Some((_, _, v)) => v.push(what),
            None => programs.push((&c.program, &c.section, vec![what])),
        }
    }
    programs
        .iter()
        .map(|(p, s, v)| {
            let list = match v.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
                _ => v.join(""),
            };
            format!("program {p} ({s}) calls {list}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

const CALL: u8 = 0x85;
const LD_IMM64: u8 = 0x18;
const INSN: usize = 8;
const SHN_UNDEF: u16 = 0;
/// Bounds the walk on hostile input (calls into calls); real objects are far below it.
const MAX_FUNCTIONS: usize = 4096;

/// Every call to an [`UNSAFE`] function made by a program of the object (program order,
/// one entry per program and function).
pub(crate) fn scan(bytes: &[u8], elf: &Elf) -> Vec<UnsafeCall> {
    let exec = |i: usize| elf.is_code(i);
    let text = elf.sections.iter().position(|s| s.name == ".text");
    let relocs = elf.code_relocs(bytes);
    let mut out = Vec::new();
    // Entry points: every function libbpf loads as a program (any binding, any executable
    // section but .text, which holds subprograms).
    for sym in &elf.symbols {
        let sec = sym.shndx as usize;
        if sym.kind() != elf::STT_FUNC || !exec(sec) || Some(sec) == text {
            continue;
        }
        let section = &elf.sections[sec].name;
        let mut found: Vec<&'static Unsafe> = Vec::new();
        let mut seen: HashSet<(usize, u64)> = HashSet::new();
        let mut work = vec![(sec, sym.value / INSN as u64, Some(sym.size / INSN as u64))];
        while let Some((sec, start, len)) = work.pop() {
            if !seen.insert((sec, start)) || seen.len() > MAX_FUNCTIONS {
                continue;
            }
            let code = elf.data(bytes, &elf.sections[sec]);
            let n = code.len() / INSN;
            let end = match len {
                Some(l) => start.saturating_add(l).min(n as u64),
                // A subprogram: up to the end of the function symbol that starts there.
                None => function_end(elf, sec, start)
                    .unwrap_or(n as u64)
                    .min(n as u64),
            };
            let mut i = start;
            while i < end {
                let at = i as usize * INSN;
                let insn = &code[at..at + INSN];
                let src = insn[1] >> 4;
                let imm = i32::from_le_bytes(insn[4..8].try_into().expect("4 bytes")) as i64;
                let reloc = relocs
                    .get(&(sec, at as u64))
                    .and_then(|&s| elf.symbols.get(s));
                match insn[0] {
                    CALL => match reloc {
                        Some(target) if target.shndx == SHN_UNDEF => {
                            if let Some(u) = UNSAFE
                                .iter()
                                .find(|u| u.helper_id.is_none() && u.name == target.name)
                            {
                                found.push(u);
                            }
                        }
                        Some(target) if exec(target.shndx as usize) => {
                            let to = (target.value / INSN as u64) as i64 + imm + 1;
                            if to >= 0 {
                                work.push((target.shndx as usize, to as u64, None));
                            }
                        }
                        Some(_) => {}
                        None if src == 0 => {
                            if let Some(u) = UNSAFE
                                .iter()
                                .find(|u| u.helper_id.is_some_and(|id| id as i64 == imm))
                            {
                                found.push(u);
                            }
                        }
                        None if src == 1 => {
                            let to = i as i64 + imm + 1;
                            if to >= 0 {
                                work.push((sec, to as u64, None));
                            }
                        }
                        None => {}
                    },
                    LD_IMM64 => {
                        if let Some(target) = reloc.filter(|t| exec(t.shndx as usize)) {
                            let to = (target.value as i64 + imm) / INSN as i64;
                            if to >= 0 {
                                work.push((target.shndx as usize, to as u64, None));
                            }
                        }
                        i += 1; // the second half of the 16-byte instruction
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        // In the table's order, each once.
        found.sort_by_key(|u| UNSAFE.iter().position(|v| v.name == u.name));
        found.dedup_by_key(|u| u.name);
        for u in found {
            out.push(UnsafeCall {
                program: sym.name.clone(),
                section: section.clone(),
                function: u.name.to_string(),
                kind: if u.helper_id.is_some() {
                    "helper"
                } else {
                    "kfunc"
                },
                effect: u.effect,
            });
        }
    }
    out
}

/// End (in instructions) of the function symbol of section `sec` that starts at `start`.
fn function_end(elf: &Elf, sec: usize, start: u64) -> Option<u64> {
    elf.symbols
        .iter()
        .find(|s| {
            s.kind() == elf::STT_FUNC
                && s.shndx as usize == sec
                && s.value == start * INSN as u64
                && s.size > 0
        })
        .map(|s| start + s.size / INSN as u64)
}
