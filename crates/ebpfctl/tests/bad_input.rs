//! The bad-input corpus: every command that reads a file or arguments, fed what a hostile
//! or careless user would give it. Each case must end with its exit code and exactly one
//! `ebpfctl: error:` line saying what is wrong (indented detail lines below it only where a
//! report needs them: the verifier's, clang's), no panic, no signal, no temp file left, and
//! no BPF program, map or link that the process created still alive afterwards (ids seen
//! at its own bpf() calls, see `bad_input/trace.rs`).
//!
//! The inputs are made here from our own objects: an example compiled with `ebpfctl build`
//! and mutated (truncated ELF, bad section names, corrupt BTF, huge counts), BTF blobs, a Go
//! program cut short. Add a case for every crash found, by hand or by the fuzzers (fuzz/).
mod common;
#[path = "bad_input/trace.rs"]
mod trace;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ebpfctl_core::btf::{Btf, Data, Kind};

struct Case {
    name: String,
    args: Vec<String>,
    code: i32,
    /// The error text must contain one of these.
    want: Vec<&'static str>,
    /// Indented lines may follow the error line (verifier reports, compiler diagnostics).
    detail: bool,
}

fn case(name: &str, args: &[&str], code: i32, want: &[&'static str]) -> Case {
    Case {
        name: name.to_string(),
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        want: want.to_vec(),
        detail: false,
    }
}

impl Case {
    fn with_detail(mut self) -> Case {
        self.detail = true;
        self
    }
}

// ---- ELF editing -------------------------------------------------------------------------

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Section headers of an ELF64 object: (name, header offset).
fn sections(b: &[u8]) -> Vec<(String, usize)> {
    let shoff = u64_at(b, 0x28) as usize;
    let shnum = u16_at(b, 0x3c) as usize;
    let shstrndx = u16_at(b, 0x3e) as usize;
    let names = u64_at(b, shoff + shstrndx * 64 + 24) as usize;
    (0..shnum)
        .map(|i| {
            let h = shoff + i * 64;
            let at = names + u32_at(b, h) as usize;
            let end = b[at..].iter().position(|&c| c == 0).unwrap();
            (String::from_utf8_lossy(&b[at..at + end]).into_owned(), h)
        })
        .collect()
}

fn header(b: &[u8], name: &str) -> usize {
    sections(b)
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no section {name}"))
        .1
}

fn section_data<'a>(b: &'a [u8], name: &str) -> &'a [u8] {
    let h = header(b, name);
    let (off, size) = (u64_at(b, h + 24) as usize, u64_at(b, h + 32) as usize);
    &b[off..off + size]
}

/// The object with section `name` holding `data` (appended, header re-pointed).
fn replace_section(b: &[u8], name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = b.to_vec();
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
    let at = out.len() as u64;
    out.extend_from_slice(data);
    let h = header(b, name);
    put_u64(&mut out, h + 24, at);
    put_u64(&mut out, h + 32, data.len() as u64);
    out
}

/// Replaces the first occurrence of `from` inside the section-name string table.
fn rename_section(b: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = b.to_vec();
    let shoff = u64_at(b, 0x28) as usize;
    let shstrndx = u16_at(b, 0x3e) as usize;
    let h = shoff + shstrndx * 64;
    let (off, size) = (u64_at(b, h + 24) as usize, u64_at(b, h + 32) as usize);
    let at = off
        + b[off..off + size]
            .windows(from.len())
            .position(|w| w == from)
            .unwrap_or_else(|| panic!("{} not among section names", String::from_utf8_lossy(from)));
    out[at..at + to.len()].copy_from_slice(to);
    out
}

// ---- BTF editing -------------------------------------------------------------------------

/// The object's BTF after `edit` (on its parsed records), encoded back into the object.
fn with_btf(obj: &[u8], edit: impl FnOnce(&mut Btf)) -> (Vec<u8>, Vec<u8>) {
    let mut btf = Btf::parse_records(section_data(obj, ".BTF")).unwrap();
    edit(&mut btf);
    let raw = btf.encode();
    (replace_section(obj, ".BTF", &raw), raw)
}

fn first(btf: &Btf, kind: Kind) -> u32 {
    btf.iter()
        .find(|(_, t)| t.kind == kind)
        .map(|(id, _)| id)
        .unwrap_or_else(|| panic!("no {kind:?} in the BTF"))
}

/// Raw BTF with extra type records appended to the type section.
fn append_types(raw: &[u8], records: &[u32]) -> Vec<u8> {
    let hdr = u32_at(raw, 4) as usize;
    let (toff, tlen) = (u32_at(raw, 8) as usize, u32_at(raw, 12) as usize);
    let (soff, slen) = (u32_at(raw, 16) as usize, u32_at(raw, 20) as usize);
    let types = &raw[hdr + toff..hdr + toff + tlen];
    let strings = &raw[hdr + soff..hdr + soff + slen];
    let mut t = types.to_vec();
    for w in records {
        t.extend_from_slice(&w.to_le_bytes());
    }
    let mut out = raw[..hdr].to_vec();
    put_u32(&mut out, 8, 0);
    put_u32(&mut out, 12, t.len() as u32);
    put_u32(&mut out, 16, t.len() as u32);
    out.extend_from_slice(&t);
    out.extend_from_slice(strings);
    out
}

// ---- the corpus ----------------------------------------------------------------------------

fn write(dir: &Path, name: &str, data: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p.display().to_string()
}

/// examples/go-mesh built once with Go 1.19 (a real Go net/http program to cut short).
fn go_mesh(dir: &Path) -> Vec<u8> {
    let out = dir.join("go-mesh");
    if !out.exists() {
        let st = Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(".")
            .current_dir(common::repo().join("examples/go-mesh"))
            .env("CGO_ENABLED", "0")
            .env("GOTOOLCHAIN", "local")
            .status()
            .expect("go (scripts/setup.sh --test installs it) is needed by this test");
        assert!(st.success(), "go build examples/go-mesh failed");
    }
    std::fs::read(out).unwrap()
}

fn corpus(dir: &Path) -> Vec<Case> {
    let ex_path = common::example("exec_print");
    let ex = std::fs::read(&ex_path).unwrap();
    let ex_s = ex_path.display().to_string();
    let xdp = common::example("xdp_udp").display().to_string();
    let params = common::example("sleep_latency").display().to_string();
    let mut cases = Vec::new();
    let obj = |cases: &mut Vec<Case>, name: &str, data: &[u8], want: &[&'static str]| {
        let p = write(dir, &format!("{name}.o"), data);
        cases.push(case(
            &format!("run {name}"),
            &["run", &p, "--duration", "5s"],
            1,
            want,
        ));
        p
    };

    // ELF structure.
    let truncated = &["truncated or corrupt ELF"];
    let p = obj(&mut cases, "empty", b"", &["not an ELF file"]);
    cases.push(case(
        "inspect empty",
        &["inspect", &p],
        1,
        &["not an ELF file"],
    ));
    cases.push(case(
        "push empty",
        &["push", &p, "localhost:1/x:v1"],
        1,
        &["not an ELF file"],
    ));
    let p = obj(
        &mut cases,
        "script",
        b"#!/bin/sh\necho hi\n",
        &["not an ELF file"],
    );
    cases.push(case(
        "inspect script",
        &["inspect", &p],
        1,
        &["not an ELF file"],
    ));
    obj(&mut cases, "elf-ident-only", &ex[..32], truncated);
    let p = obj(&mut cases, "elf-header-only", &ex[..64], truncated);
    cases.push(case(
        "inspect elf-header-only",
        &["inspect", &p],
        1,
        truncated,
    ));
    let p = obj(&mut cases, "truncated-half", &ex[..ex.len() / 2], truncated);
    cases.push(case(
        "inspect truncated-half",
        &["inspect", &p],
        1,
        truncated,
    ));
    cases.push(case(
        "push truncated-half",
        &["push", &p, "localhost:1/x:v1"],
        1,
        truncated,
    ));
    let mut m = ex.clone();
    m[4] = 1;
    obj(&mut cases, "elf32", &m, &["32-bit ELF"]);
    let mut m = ex.clone();
    m[5] = 2;
    obj(&mut cases, "big-endian", &m, &["big-endian"]);
    let mut m = ex.clone();
    put_u16(&mut m, 16, 2);
    obj(&mut cases, "executable-type", &m, &["relocatable"]);
    let true_bin = std::fs::read("/bin/true").unwrap();
    let p = obj(&mut cases, "x86-elf", &true_bin, &["x86-64, not BPF"]);
    cases.push(case(
        "inspect x86-elf",
        &["inspect", &p],
        1,
        &["x86-64, not BPF"],
    ));
    let mut m = ex.clone();
    put_u64(&mut m, 0x28, 1 << 60);
    obj(&mut cases, "shoff-huge", &m, truncated);
    let mut m = ex.clone();
    put_u16(&mut m, 0x3c, 0xffff);
    obj(&mut cases, "shnum-huge", &m, truncated);
    let mut m = ex.clone();
    put_u16(&mut m, 0x3e, 0xfff0);
    obj(&mut cases, "shstrndx-out-of-range", &m, truncated);
    let prog_hdr = header(&ex, "tracepoint/sched/sched_process_exec");
    let mut m = ex.clone();
    put_u64(&mut m, prog_hdr + 24, ex.len() as u64 + 100);
    obj(&mut cases, "section-past-eof", &m, truncated);
    let mut m = ex.clone();
    put_u64(&mut m, prog_hdr + 32, 1 << 62);
    obj(&mut cases, "section-size-huge", &m, truncated);
    let symtab = header(&ex, ".symtab");
    let mut m = ex.clone();
    put_u64(&mut m, symtab + 32, 1 << 40);
    obj(&mut cases, "symtab-count-huge", &m, truncated);
    let mut m = ex.clone();
    let (so, ss) = (
        u64_at(&ex, symtab + 24) as usize,
        u64_at(&ex, symtab + 32) as usize,
    );
    for at in (so..so + ss).step_by(24) {
        put_u32(&mut m, at, 0xffff_fff0);
    }
    let p = obj(&mut cases, "symbol-names-out-of-range", &m, truncated);
    cases.push(case(
        "inspect symbol-names-out-of-range",
        &["inspect", &p],
        1,
        truncated,
    ));

    // Section names. One byte 0xff in a section name made libbpf log non-UTF-8, which
    // aborted ebpfctl inside libbpf-rs's print callback.
    let m = rename_section(&ex, b"tracepoint/sched/", b"tracepoint/\xffched/");
    obj(
        &mut cases,
        "section-name-not-utf8",
        &m,
        &["no program could be attached", "exec_print"],
    );
    let m = rename_section(&ex, b"tracepoint/sched/", b"kwyjibo/ab/sched/");
    cases.push(
        case(
            "run unknown-section",
            &[
                "run",
                &write(dir, "unknown-section.o", &m),
                "--duration",
                "5s",
            ],
            1,
            &["kwyjibo"],
        )
        .with_detail(),
    );
    let m = rename_section(&ex, b".maps.print", b".maps.p\xffint");
    obj(&mut cases, "map-keyword-not-utf8", &m, &["unknown keyword"]);
    let m = rename_section(&ex, b".maps.print", b".maps.frobs");
    let p = obj(
        &mut cases,
        "map-keyword-unknown",
        &m,
        &["unknown keyword `frobs`"],
    );
    cases.push(case(
        "inspect map-keyword-unknown",
        &["inspect", &p],
        1,
        &["frobs"],
    ));

    // License: a GPL-only helper in a non-GPL object; the verifier says so.
    let mut m = ex.clone();
    let at = m.windows(4).position(|w| w == b"GPL\0").unwrap();
    m[at..at + 3].copy_from_slice(b"XYZ");
    cases.push(
        case(
            "run non-gpl-license",
            &["run", &write(dir, "non-gpl.o", &m), "--duration", "5s"],
            1,
            &["GPL"],
        )
        .with_detail(),
    );

    // .BTF.ext with a record size of 0 for function info.
    let ext = section_data(&ex, ".BTF.ext");
    let mut bad_ext = ext.to_vec();
    let hdr_len = u32_at(ext, 4) as usize;
    let fi_off = u32_at(ext, 8) as usize;
    put_u32(&mut bad_ext, hdr_len + fi_off, 0);
    obj(
        &mut cases,
        "btf-ext-record-size-0",
        &replace_section(&ex, ".BTF.ext", &bad_ext),
        &["libbpf cannot open the object", ".BTF.ext", "BTF"],
    );

    // BTF: the object's, corrupted; each also as a raw BTF file for `btf dump --format c`
    // (which crashed inside libbpf's btf_dump on such types) and `inspect`.
    let btf_raw = section_data(&ex, ".BTF").to_vec();
    let btf_case =
        |cases: &mut Vec<Case>, name: &str, obj_bytes: &[u8], raw: &[u8], want: &[&'static str]| {
            let p = write(dir, &format!("{name}.o"), obj_bytes);
            cases.push(case(
                &format!("run {name}"),
                &["run", &p, "--duration", "5s"],
                1,
                want,
            ));
            cases.push(case(&format!("inspect {name}"), &["inspect", &p], 1, want));
            let b = write(dir, &format!("{name}.btf"), raw);
            cases.push(case(
                &format!("btf dump c {name}"),
                &["btf", "dump", "--format", "c", "file", &b],
                1,
                want,
            ));
        };
    let mut m = btf_raw.clone();
    m[0] = 0;
    btf_case(
        &mut cases,
        "btf-bad-magic",
        &replace_section(&ex, ".BTF", &m),
        &m,
        &["not BTF", "neither raw BTF"],
    );
    let mut m = btf_raw.clone();
    m[2] = 9;
    btf_case(
        &mut cases,
        "btf-version-9",
        &replace_section(&ex, ".BTF", &m),
        &m,
        &["version 9"],
    );
    let mut m = btf_raw.clone();
    put_u32(&mut m, 20, 0x7fff_ffff);
    btf_case(
        &mut cases,
        "btf-strings-past-end",
        &replace_section(&ex, ".BTF", &m),
        &m,
        &["truncated"],
    );
    let (o, r) = with_btf(&ex, |b| {
        let id = first(b, Kind::Typedef);
        b.get_mut(id).unwrap().size_or_type = 999_999;
    });
    btf_case(
        &mut cases,
        "btf-type-id-out-of-range",
        &o,
        &r,
        &["999999, which does not exist"],
    );
    let (o, r) = with_btf(&ex, |b| {
        let id = first(b, Kind::Int);
        b.get_mut(id).unwrap().size_or_type = 0;
    });
    btf_case(&mut cases, "btf-int-size-0", &o, &r, &["size 0"]);
    let (o, r) = with_btf(&ex, |b| {
        let id = first(b, Kind::Enum);
        b.get_mut(id).unwrap().size_or_type = 0;
    });
    btf_case(&mut cases, "btf-enum-size-0", &o, &r, &["size 0"]);
    let (o, r) = with_btf(&ex, |b| {
        let id = first(b, Kind::Typedef);
        b.get_mut(id).unwrap().size_or_type = id;
    });
    btf_case(
        &mut cases,
        "btf-typedef-to-itself",
        &o,
        &r,
        &["refers to itself"],
    );
    let (o, r) = with_btf(&ex, |b| {
        let id = first(b, Kind::Ptr);
        b.get_mut(id).unwrap().size_or_type = id;
    });
    btf_case(
        &mut cases,
        "btf-pointer-to-itself",
        &o,
        &r,
        &["refers to itself"],
    );
    let (o, r) = with_btf(&ex, |b| {
        let id = first(b, Kind::Struct);
        if let Data::Members(ms) = &mut b.get_mut(id).unwrap().data {
            ms[0].type_id = id;
        }
    });
    btf_case(
        &mut cases,
        "btf-struct-holds-itself",
        &o,
        &r,
        &["refers to itself"],
    );
    let (o, r) = with_btf(&ex, |b| {
        let id = first(b, Kind::Struct);
        if let Data::Members(ms) = &mut b.get_mut(id).unwrap().data {
            ms[0].bit_offset = 1 << 23;
        }
    });
    btf_case(
        &mut cases,
        "btf-member-outside-struct",
        &o,
        &r,
        &["lies outside"],
    );
    let (o, r) = with_btf(&ex, |b| {
        let id = first(b, Kind::Array);
        if let Data::Array { len, .. } = &mut b.get_mut(id).unwrap().data {
            *len = u32::MAX;
        }
    });
    btf_case(
        &mut cases,
        "btf-array-count-huge",
        &o,
        &r,
        &["larger than 4 GiB"],
    );
    let (o, r) = with_btf(&ex, |b| {
        let id = first(b, Kind::Struct);
        b.get_mut(id).unwrap().name_off = 0x7fff_ffff;
    });
    btf_case(
        &mut cases,
        "btf-name-outside-strings",
        &o,
        &r,
        &["outside the string table"],
    );
    // 1000 `const` in a row: deeper than any real type, and than C code should recurse.
    let int = first(&Btf::parse(&btf_raw).unwrap(), Kind::Int);
    let n = Btf::parse(&btf_raw).unwrap().len() as u32;
    let chain: Vec<u32> = (0..1000u32)
        .flat_map(|i| {
            [
                0,
                (Kind::Const as u32) << 24,
                if i == 0 { int } else { n + i },
            ]
        })
        .collect();
    let r = append_types(&btf_raw, &chain);
    btf_case(
        &mut cases,
        "btf-chain-too-deep",
        &replace_section(&ex, ".BTF", &r),
        &r,
        &["deeper than"],
    );
    // A struct record claiming 65535 members: the type section ends first.
    let r = append_types(&btf_raw, &[0, ((Kind::Struct as u32) << 24) | 0xffff, 8]);
    btf_case(
        &mut cases,
        "btf-member-count-huge",
        &replace_section(&ex, ".BTF", &r),
        &r,
        &["truncated"],
    );

    // `btf` on other bad files and ids.
    let text = write(dir, "text.btf", b"hello, not BTF\n");
    cases.push(case(
        "btf dump c text",
        &["btf", "dump", "--format", "c", "file", &text],
        1,
        &["neither raw BTF"],
    ));
    cases.push(case(
        "btf dump raw text",
        &["btf", "dump", "file", &text],
        1,
        &["neither raw BTF"],
    ));
    cases.push(case(
        "btf dump c no-btf-elf",
        &["btf", "dump", "--format", "c", "file", "/bin/true"],
        1,
        &["no .BTF section"],
    ));
    cases.push(case(
        "btf dump missing file",
        &["btf", "dump", "file", "/nonexistent/x.btf"],
        1,
        &["No such file"],
    ));
    cases.push(case(
        "btf dump id max",
        &["btf", "dump", "id", "4294967295"],
        1,
        &["no BTF object with id 4294967295"],
    ));
    cases.push(case(
        "btf dump c id max",
        &["btf", "dump", "--format", "c", "id", "4294967295"],
        1,
        &["no BTF object with id 4294967295"],
    ));
    cases.push(case(
        "btf dump c json",
        &["btf", "dump", "--format", "c", "-o", "json", "vmlinux"],
        1,
        &["-o json applies to --format raw"],
    ));
    cases.push(case(
        "btf dump out in missing dir",
        &[
            "btf",
            "dump",
            "--format",
            "c",
            "file",
            &ex_s,
            "--out",
            "/nonexistent/x.h",
        ],
        1,
        &["/nonexistent/x.h"],
    ));
    cases.push(case(
        "btf dump id not a number",
        &["btf", "dump", "id", "seven"],
        2,
        &["invalid digit"],
    ));

    // `run` arguments.
    cases.push(case(
        "run missing file",
        &["run", "/nonexistent/x.o"],
        1,
        &["No such file"],
    ));
    cases.push(case(
        "run a directory",
        &["run", "/tmp"],
        1,
        &["Is a directory"],
    ));
    cases.push(case("run no object", &["run"], 2, &["<OBJECT>"]));
    cases.push(case(
        "run unknown param",
        &["run", &params, "--param", "nope=1", "--duration", "5s"],
        1,
        &["unknown parameter nope"],
    ));
    cases.push(case(
        "run param too long",
        &[
            "run",
            &params,
            "--param",
            &format!("target_comm={}", "a".repeat(40)),
            "--duration",
            "5s",
        ],
        1,
        &["longer than 15 bytes"],
    ));
    cases.push(case(
        "run param without value",
        &["run", &params, "--param", "target_comm"],
        2,
        &["expected NAME=VALUE"],
    ));
    cases.push(case(
        "run bad interval",
        &["run", &ex_s, "--interval", "soon"],
        2,
        &["expected a duration"],
    ));
    cases.push(case(
        "run bad duration",
        &["run", &ex_s, "--duration", "1 fortnight"],
        2,
        &["duration"],
    ));
    cases.push(case(
        "run bad output",
        &["run", &ex_s, "-o", "yaml"],
        2,
        &["possible values"],
    ));
    cases.push(case(
        "run unknown flag",
        &["run", &ex_s, "--frobnicate"],
        2,
        &["--frobnicate"],
    ));
    cases.push(case(
        "run bad metrics address",
        &["run", &ex_s, "--metrics-addr", "localhost"],
        2,
        &["--metrics-addr"],
    ));
    cases.push(case(
        "run metrics address not local",
        &[
            "run",
            &ex_s,
            "--metrics-addr",
            "192.0.2.1:80",
            "--duration",
            "5s",
        ],
        1,
        &["cannot serve metrics on 192.0.2.1:80"],
    ));
    cases.push(case(
        "run xdp without iface",
        &["run", &xdp, "--duration", "5s"],
        1,
        &["no program could be attached", "iface"],
    ));
    cases.push(case(
        "run xdp on missing iface",
        &["run", &xdp, "--iface", "nosuchif0", "--duration", "5s"],
        1,
        &["no program could be attached", "nosuchif0"],
    ));
    cases.push(case(
        "run hist key unknown",
        &["run", &params, "--hist-key", "nope", "--duration", "5s"],
        1,
        &["--hist-key nope: no such member"],
    ));
    cases.push(case(
        "run registry unreachable",
        &["run", "localhost:1/probes/x:v1"],
        1,
        &["cannot connect to registry localhost:1"],
    ));

    // Other commands that read files or arguments.
    let src_bad = write(dir, "syntax.bpf.c", b"int broken(\n");
    cases.push(
        case(
            "build syntax error",
            &[
                "build",
                &src_bad,
                "-o",
                &dir.join("syntax.o").display().to_string(),
            ],
            1,
            &["clang failed on"],
        )
        .with_detail(),
    );
    cases.push(case(
        "build missing source",
        &["build", "/nonexistent/p.bpf.c"],
        1,
        &["no such file"],
    ));
    cases.push(case(
        "build an object",
        &["build", &ex_s],
        1,
        &["not a C source file"],
    ));
    cases.push(case(
        "init name escapes dir",
        &[
            "init",
            &dir.join("init1").display().to_string(),
            "--name",
            "../evil",
        ],
        1,
        &["--name"],
    ));
    cases.push(case(
        "init empty name",
        &[
            "init",
            &dir.join("init2").display().to_string(),
            "--name",
            "",
        ],
        1,
        &["--name"],
    ));
    cases.push(case(
        "init under /proc",
        &["init", "/proc/ebpfctl-nope"],
        1,
        &["/proc/ebpfctl-nope"],
    ));
    cases.push(case(
        "push missing object",
        &["push", "/nonexistent/x.o", "localhost:1/x:v1"],
        1,
        &["No such file"],
    ));
    cases.push(case(
        "push bad reference",
        &["push", &ex_s, "UPPER::bad"],
        1,
        &["invalid image reference"],
    ));
    cases.push(case(
        "push registry unreachable",
        &["push", &ex_s, "localhost:1/x:v1"],
        1,
        &["cannot connect to registry localhost:1"],
    ));
    cases.push(case(
        "pull bad reference",
        &["pull", "bad ref"],
        1,
        &["invalid image reference"],
    ));
    cases.push(case(
        "pull registry unreachable",
        &["pull", "localhost:1/x:v1"],
        1,
        &["cannot connect to registry localhost:1"],
    ));
    cases.push(case(
        "execsnoop max-args 0",
        &["execsnoop", "--max-args", "0"],
        1,
        &["1 to 60"],
    ));
    cases.push(case(
        "execsnoop arg-len too big",
        &["execsnoop", "--arg-len", "5000"],
        1,
        &["1 to 4095"],
    ));
    cases.push(case(
        "execsnoop ring not power of two",
        &["execsnoop", "--ring-kib", "3"],
        1,
        &["power of two"],
    ));
    cases.push(case(
        "execsnoop bad regex",
        &["execsnoop", "-n", "("],
        1,
        &["not a valid regex"],
    ));
    cases.push(case(
        "execsnoop missing cgroup",
        &["execsnoop", "--cgroup", "/nonexistent"],
        1,
        &["--cgroup /nonexistent"],
    ));
    cases.push(case(
        "execsnoop unknown user",
        &["execsnoop", "-u", "nosuchuserxyz"],
        1,
        &["no such user"],
    ));
    cases.push(case(
        "opensnoop bad regex",
        &["opensnoop", "-n", "["],
        1,
        &["not a valid regex"],
    ));
    cases.push(case(
        "opensnoop ring 0",
        &["opensnoop", "--ring-kib", "0"],
        1,
        &["power of two"],
    ));
    cases.push(case(
        "opensnoop unknown user",
        &["opensnoop", "-u", "nosuchuserxyz"],
        1,
        &["no such user"],
    ));
    cases.push(case(
        "opensnoop pid not a number",
        &["opensnoop", "-p", "me"],
        2,
        &["invalid digit"],
    ));

    // observe of what is not a (whole) Go program.
    let go = go_mesh(dir);
    let target = common::target_dir()
        .join("ebpfctl-example-target")
        .display()
        .to_string();
    cases.push(case(
        "observe a C program",
        &["observe", &target],
        1,
        &["not a Go program"],
    ));
    cases.push(case(
        "observe a script",
        &["observe", &write(dir, "script.sh", b"#!/bin/sh\n")],
        1,
        &["not an ELF executable"],
    ));
    cases.push(case(
        "observe a BPF object",
        &["observe", &ex_s],
        1,
        &["observe"],
    ));
    cases.push(case(
        "observe Go cut at 100 bytes",
        &["observe", &write(dir, "go-100", &go[..100]), "--inspect"],
        1,
        &["truncated or corrupt"],
    ));
    cases.push(case(
        "observe Go cut at 1 MB",
        &["observe", &write(dir, "go-1m", &go[..1 << 20]), "--inspect"],
        1,
        &["truncated"],
    ));
    cases.push(case(
        "observe Go cut in half",
        &[
            "observe",
            &write(dir, "go-half", &go[..go.len() / 2]),
            "--inspect",
        ],
        1,
        &["truncated"],
    ));
    cases.push(case(
        "observe missing file",
        &["observe", "/nonexistent/svc"],
        1,
        &["no such file"],
    ));
    cases.push(case(
        "observe missing pid",
        &["observe", "--pid", "999999999"],
        1,
        &["process 999999999 does not exist"],
    ));
    cases.push(case(
        "observe nothing",
        &["observe"],
        1,
        &["nothing to observe"],
    ));

    // Introspection by id.
    for (what, kind) in [("prog", "program"), ("map", "map"), ("link", "link")] {
        cases.push(case(
            &format!("{what} show missing id"),
            &[what, "show", "4294967295"],
            1,
            &[if kind == "program" {
                "no BPF program with id 4294967295"
            } else if kind == "map" {
                "no BPF map with id 4294967295"
            } else {
                "no BPF link with id 4294967295"
            }],
        ));
        cases.push(case(
            &format!("{what} show negative id"),
            &[what, "show", "-1"],
            2,
            &["-1"],
        ));
        // A malformed selector is a usage error (exit 2), like clap's own.
        let not_id: &'static str = match what {
            "prog" => "is not a BPF program id",
            "map" => "is not a BPF map id",
            _ => "is not a BPF link id",
        };
        for verb in ["show", "dump"]
            .into_iter()
            .filter(|v| *v != "dump" || what != "link")
        {
            cases.push(case(
                &format!("{what} {verb} not a number"),
                &[what, verb, "twelve"],
                2,
                &[not_id],
            ));
            cases.push(case(
                &format!("{what} {verb} id not a number"),
                &[what, verb, "id", "twelve"],
                2,
                &[not_id],
            ));
        }
        cases.push(case(
            &format!("{what} show unknown keyword"),
            &[what, "show", "color", "red"],
            2,
            &["\"color\": a BPF"],
        ));
    }
    cases.push(case(
        "prog show bad tag",
        &["prog", "show", "tag", "xyz"],
        2,
        &["tag \"xyz\": expected 16 hex digits"],
    ));
    cases.push(case(
        "prog show empty name",
        &["prog", "show", "name", ""],
        2,
        &["name: expected a name"],
    ));
    cases.push(case(
        "link show name",
        &["link", "show", "name", "x"],
        2,
        &["a BPF link is selected by ID or id|pinned VALUE"],
    ));
    cases.push(case(
        "prog dump missing id",
        &["prog", "dump", "4294967295"],
        1,
        &["no BPF program with id 4294967295"],
    ));
    cases.push(case(
        "map dump id 0",
        &["map", "dump", "0"],
        1,
        &["no BPF map with id 0"],
    ));
    cases.push(case(
        "feature bad output",
        &["feature", "-o", "yaml"],
        2,
        &["invalid value 'yaml'"],
    ));
    cases.push(case(
        "top interval 0",
        &["top", "--interval", "0", "--count", "1"],
        1,
        &["at least 50ms"],
    ));
    cases.push(case(
        "top missing id",
        &["top", "--json", "--count", "1", "--id", "4294967295"],
        1,
        &["no BPF program with id 4294967295"],
    ));
    cases.push(case("unknown command", &["frobnicate"], 2, &["frobnicate"]));
    cases
}

/// What is wrong with one case's outcome, if anything.
fn check(c: &Case, tmpdir: &Path) -> Option<String> {
    let tmp = tmpdir.display().to_string();
    let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
    let t = trace::run(
        common::bin(),
        &args,
        &[("TMPDIR", &tmp)],
        Duration::from_secs(90),
    );
    let err = t.stderr();
    let mut problems = Vec::new();
    if t.timed_out {
        problems.push("did not finish within 90 s".to_string());
    }
    if let Some(sig) = t.signal {
        problems.push(format!("killed by signal {sig}"));
    }
    if t.code != Some(c.code) {
        problems.push(format!("exit code {:?}, expected {}", t.code, c.code));
    }
    if err.contains("panicked") {
        problems.push("panicked".into());
    }
    let lines: Vec<&str> = err.lines().collect();
    let errors = lines
        .iter()
        .filter(|l| l.starts_with("ebpfctl: error:"))
        .count();
    if errors != 1
        || !lines
            .first()
            .is_some_and(|l| l.starts_with("ebpfctl: error:"))
    {
        problems.push(format!(
            "{errors} `ebpfctl: error:` lines, expected exactly one, first"
        ));
    }
    if !c.detail && lines.len() > 1 {
        problems.push(format!(
            "{} more line(s) after the error line",
            lines.len() - 1
        ));
    }
    if !c.want.iter().any(|w| err.contains(w)) {
        problems.push(format!("the message mentions none of {:?}", c.want));
    }
    let survivors = t.survivors();
    if !survivors.is_empty() {
        problems.push(format!("left behind: {}", survivors.join(", ")));
    }
    let left: Vec<PathBuf> = std::fs::read_dir(tmpdir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    for p in &left {
        let _ = std::fs::remove_file(p).or_else(|_| std::fs::remove_dir_all(p));
    }
    if !left.is_empty() {
        problems.push(format!("left in $TMPDIR: {left:?}"));
    }
    (!problems.is_empty()).then(|| {
        format!(
            "{}: {}\n    ebpfctl {}\n    stderr: {}",
            c.name,
            problems.join("; "),
            c.args.join(" "),
            err.trim_end().replace('\n', "\n            ")
        )
    })
}

#[test]
fn every_bad_input_fails_cleanly() {
    // SAFETY: geteuid has no arguments and cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "run the tests as root");
    let dir = common::tmp().join("bad-input");
    std::fs::create_dir_all(&dir).unwrap();
    let tmpdir = dir.join("tmpdir");
    let _ = std::fs::remove_dir_all(&tmpdir);
    std::fs::create_dir_all(&tmpdir).unwrap();
    let cases = corpus(&dir);
    assert!(cases.len() >= 60, "only {} cases", cases.len());
    let only = std::env::var("BAD_INPUT_CASE").ok();
    let failures: Vec<String> = cases
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.name.contains(o)))
        .filter_map(|c| check(c, &tmpdir))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} bad inputs were not handled cleanly:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The tracer itself: a run that loads and attaches sees its program, maps and link, and
/// none survives the process.
#[test]
fn tracer_sees_what_a_run_loads() {
    let ex = common::example("exec_print").display().to_string();
    let t = trace::run(
        common::bin(),
        &["run", &ex, "--duration", "1s", "--no-metrics"],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(t.code, Some(0), "{}", t.stderr());
    // libbpf's feature probes load small programs too.
    assert!(!t.progs.is_empty(), "no program seen");
    assert!(!t.maps.is_empty(), "no map seen");
    assert_eq!(t.survivors(), Vec::<String>::new());
}
