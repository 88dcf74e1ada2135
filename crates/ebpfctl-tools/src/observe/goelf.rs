//! What `observe` needs from a Go executable, read from the file alone: the Go version
//! (build info), function addresses (symbol table, or `.gopclntab` when stripped), file
//! offsets for uprobes (program headers; PIE works the same) and RET sites.
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};

use super::deferred::{self, DeferredReturn};
use super::moduledata;
use super::pclntab;
use super::success;
use super::ObserveError;

/// Functions the probes attach to.
pub const FN_ROUND_TRIP: &str = "net/http.(*Transport).roundTrip";
pub const FN_SERVE_HTTP: &str = "net/http.serverHandler.ServeHTTP";
/// Called by the connection's goroutine right after ServeHTTP returns (HTTP/1).
pub const FN_FINISH_REQUEST: &str = "net/http.(*response).finishRequest";
/// Closures of roundTrip; the deferred one is told apart by analysis (see `deferred.rs`).
const FN_ROUND_TRIP_CLOSURES: [&str; 3] = [
    "net/http.(*Transport).roundTrip.func1",
    "net/http.(*Transport).roundTrip.func2",
    "net/http.(*Transport).roundTrip.func3",
];
/// Called when a handler takes over the connection (`Hijacker.Hijack`).
pub const FN_HIJACK: &str = "net/http.(*conn).hijackLocked";
/// What roundTrip calls for an HTTP/1 request; its error is tested right after (see
/// `success.rs`).
const FN_PERSIST_ROUND_TRIP: &str = "net/http.(*persistConn).roundTrip";
/// The end of an HTTP/2 server request: called by the handler's goroutine once the handler
/// returned (bundled into net/http before Go 1.27, its own internal package since).
const FN_H2_HANDLER_DONE: [&str; 2] = [
    "net/http.(*http2responseWriter).handlerDone",
    "net/http/internal/http2.(*responseWriter).handlerDone",
];

/// Where the HTTP/2 server builds a request from its decoded header block, before starting
/// the handler's goroutine (read for `traceparent`).
const FN_H2_NEW_REQUEST: [&str; 2] = [
    "net/http.(*http2serverConn).newWriterAndRequest",
    "net/http/internal/http2.(*serverConn).newWriterAndRequest",
];

/// Closures of the functions whose deferred closure recovers a handler's panic: HTTP/1's
/// `(*conn).serve` and the HTTP/2 server's `runHandler` (the one calling `runtime.gorecover`
/// is the deferred one).
const FN_SERVE_CLOSURES: [&str; 3] = [
    "net/http.(*conn).serve.func1",
    "net/http.(*conn).serve.func2",
    "net/http.(*conn).serve.func3",
];
const FN_H2_RUN_CLOSURES: [&str; 6] = [
    "net/http.(*http2serverConn).runHandler.func1",
    "net/http.(*http2serverConn).runHandler.func2",
    "net/http.(*http2serverConn).runHandler.func3",
    "net/http/internal/http2.(*serverConn).runHandler.func1",
    "net/http/internal/http2.(*serverConn).runHandler.func2",
    "net/http/internal/http2.(*serverConn).runHandler.func3",
];
/// What `recover()` compiles to.
const FN_GORECOVER: &str = "runtime.gorecover";

/// A Go version, e.g. 1.21.13 → (1, 21, 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl std::fmt::Display for GoVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "go{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl GoVersion {
    pub const MIN_SUPPORTED: GoVersion = GoVersion {
        major: 1,
        minor: 17,
        patch: 0,
    };

    /// Parses `go1.21.13`, `go1.22rc1`, `go1.27.3 X:nocoverageredesign`; `None` for `devel`.
    pub fn parse(s: &str) -> Option<GoVersion> {
        let s = s.split_whitespace().next()?.strip_prefix("go")?;
        let mut it = s.split('.');
        let num = |p: Option<&str>| -> Option<u32> {
            let p = p?;
            let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
            digits.parse().ok()
        };
        let major = num(it.next())?;
        let minor = num(it.next())?;
        let patch = num(it.next()).unwrap_or(0);
        Some(GoVersion {
            major,
            minor,
            patch,
        })
    }
}

/// A function found in the binary.
#[derive(Debug, Clone)]
pub struct GoFunc {
    pub name: String,
    /// Virtual address of the entry.
    pub addr: u64,
    pub size: u64,
    /// File offset of the entry probe (after an ENDBR64, if any).
    pub entry_offset: u64,
    /// Virtual address of the entry probe.
    pub entry_addr: u64,
    /// File offsets of every RET instruction.
    pub ret_offsets: Vec<u64>,
    /// The entry probe sits on an instruction the kernel emulates (a jump): one trap per
    /// hit instead of two (see [`find_rets_amd64`]).
    pub entry_emulated: bool,
}

/// Where the function table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolSource {
    Symtab,
    Pclntab,
}

/// The analysis of one Go executable.
#[derive(Debug, Clone)]
pub struct GoBinary {
    pub path: PathBuf,
    pub version_string: String,
    pub version: GoVersion,
    pub arch: &'static str,
    pub pie: bool,
    pub stripped: bool,
    pub symbols: SymbolSource,
    pub round_trip: Option<GoFunc>,
    pub serve_http: Option<GoFunc>,
    pub finish_request: Option<GoFunc>,
    pub hijack: Option<GoFunc>,
    /// The HTTP/2 server's end of a request.
    pub h2_handler_done: Option<GoFunc>,
    /// The HTTP/2 server's new request, with its header fields.
    pub h2_new_request: Option<GoFunc>,
    /// conn.serve's deferred closure that recovers a handler's panic (HTTP/1).
    pub server_recover: Option<GoFunc>,
    /// runHandler's deferred closure (HTTP/2): recovers a panic, else calls handlerDone.
    pub h2_recover: Option<GoFunc>,
    /// roundTrip's deferred closure, when its returns can be seen from there.
    pub client_exit: Option<DeferredExit>,
    /// Without such a closure (Go < 1.23): roundTrip's test of a nil error.
    pub client_success: Option<SuccessExit>,
    /// Type data from the module data (`None` when it was not found: error values are then
    /// decoded from their first string only).
    pub types: Option<GoTypes>,
    /// Addresses of the pclntab and the module data, when found.
    pub pclntab: Option<u64>,
    pub moduledata: Option<u64>,
}

/// What events need of the binary's types: the type data's range (type names resolve in
/// it) and the types that implement `error`.
#[derive(Debug, Clone)]
pub struct GoTypes {
    pub types: u64,
    pub etypes: u64,
    /// (type address, name as `%T` prints it), sorted by address.
    pub errors: Vec<(u64, String)>,
    /// The lowest address of the executable segment (`mm->start_code` minus the load bias).
    pub exec_vaddr: u64,
    /// (virtual address, file offset, size) of the loaded segments, to read type names
    /// from the file later.
    pub segments: Vec<(u64, u64, u64)>,
}

/// roundTrip's success seen at its error check (see `success.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuccessExit {
    /// File offset of the conditional jump on the error (emulated).
    pub probe_offset: u64,
    /// File offset of the RET of `return resp, nil`: it needs no RET probe.
    pub covered_ret: u64,
}

/// roundTrip's returns seen at the entry of its deferred closure (see `deferred.rs`).
#[derive(Debug, Clone)]
pub struct DeferredExit {
    pub closure: GoFunc,
    pub returns: Vec<DeferredReturn>,
    /// File offsets of the RETs these returns cover: they need no RET probe.
    pub covered_rets: Vec<u64>,
}

const BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";

impl GoBinary {
    /// Reads and analyses the executable at `path` (a file or `/proc/PID/exe`).
    pub fn open(path: &Path) -> Result<GoBinary, ObserveError> {
        let data = std::fs::read(path).map_err(|source| ObserveError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &data)
    }

    pub fn parse(path: &Path, data: &[u8]) -> Result<GoBinary, ObserveError> {
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err(ObserveError::NotElf(path.to_owned()));
        }
        let file = object::File::parse(data).map_err(|e| ObserveError::Malformed {
            path: path.to_owned(),
            what: format!("cannot parse ELF ({e}); is the file truncated or corrupt?"),
        })?;
        let arch = match file.architecture() {
            object::Architecture::X86_64 => "amd64",
            object::Architecture::Aarch64 => "arm64",
            other => {
                return Err(ObserveError::UnsupportedArch {
                    path: path.to_owned(),
                    arch: format!("{other:?}"),
                });
            }
        };
        let version_string = match read_buildinfo_version(&file, data) {
            Some(v) => v,
            None if file.section_by_name(".go.buildinfo").is_some() => {
                return Err(ObserveError::Malformed {
                    path: path.to_owned(),
                    what:
                        "its Go build info (.go.buildinfo) cannot be read; is the file truncated?"
                            .into(),
                })
            }
            None => return Err(ObserveError::NotGo(path.to_owned())),
        };
        let version = GoVersion::parse(&version_string).unwrap_or(GoVersion {
            major: 1,
            minor: 99,
            patch: 0,
        });
        if version < GoVersion::MIN_SUPPORTED {
            return Err(ObserveError::GoTooOld {
                path: path.to_owned(),
                version: version_string,
            });
        }
        // The probe is compiled for the machine ebpfctl runs on: its registers must match.
        if arch != HOST_ARCH {
            return Err(ObserveError::UnsupportedArch {
                path: path.to_owned(),
                arch: arch.into(),
            });
        }
        let pie = file.kind() == object::ObjectKind::Dynamic;
        let has_symtab = file.symbols().next().is_some();
        let stripped = !has_symtab;
        let mut wanted = vec![FN_ROUND_TRIP, FN_SERVE_HTTP, FN_FINISH_REQUEST, FN_HIJACK];
        wanted.extend(FN_ROUND_TRIP_CLOSURES);
        wanted.push(FN_PERSIST_ROUND_TRIP);
        wanted.extend(FN_H2_HANDLER_DONE);
        wanted.extend(FN_H2_NEW_REQUEST);
        wanted.extend(FN_SERVE_CLOSURES);
        wanted.extend(FN_H2_RUN_CLOSURES);
        wanted.push(FN_GORECOVER);
        let img = moduledata::Image::new(&file, data);
        let pclntab_addr = moduledata::find_pclntab(&file, &img);
        let module =
            pclntab_addr.and_then(|pc| moduledata::find_moduledata(&file, &img, version, pc));
        let types = module.map(|m| GoTypes {
            types: m.types,
            etypes: m.etypes,
            errors: moduledata::error_types(&img, &m),
            exec_vaddr: moduledata::exec_vaddr(&file),
            segments: file
                .segments()
                .map(|s| {
                    let (off, size) = s.file_range();
                    (s.address(), off, size)
                })
                .collect(),
        });
        let (found, symbols) = if has_symtab {
            let mut found: Vec<Option<(u64, u64)>> = vec![None; wanted.len()];
            for sym in file.symbols() {
                if let Ok(name) = sym.name() {
                    if let Some(i) = wanted.iter().position(|w| *w == name) {
                        found[i] = Some((sym.address(), sym.size()));
                    }
                }
            }
            (found, SymbolSource::Symtab)
        } else {
            let tab_addr = pclntab_addr.ok_or_else(|| ObserveError::Malformed {
                path: path.to_owned(),
                what: "stripped, and no Go pclntab found (neither a section for it nor its header in the loaded segments): cannot find functions".into(),
            })?;
            // The text start: the module data's, else the .text section's (the header's own
            // textStart is used when set).
            let text_addr = module
                .map(|m| m.text)
                .or_else(|| file.section_by_name(".text").map(|s| s.address()))
                .unwrap_or(0);
            let tab = img.rest(tab_addr).unwrap_or_default();
            let found = pclntab::find_functions(tab, text_addr, &wanted).map_err(|what| {
                ObserveError::Malformed {
                    path: path.to_owned(),
                    what: format!("pclntab at {tab_addr:#x}: {what}"),
                }
            })?;
            (found, SymbolSource::Pclntab)
        };
        let found_copy = found.clone();
        let mut funcs = Vec::new();
        for (name, f) in wanted.iter().zip(found) {
            funcs.push(match f {
                // A helper that cannot be analysed only disables the exit probe it serves.
                Some((addr, size))
                    if FN_ROUND_TRIP_CLOSURES.contains(name)
                        || *name == FN_PERSIST_ROUND_TRIP
                        || FN_H2_HANDLER_DONE.contains(name)
                        || FN_H2_NEW_REQUEST.contains(name)
                        || FN_SERVE_CLOSURES.contains(name)
                        || FN_H2_RUN_CLOSURES.contains(name)
                        || *name == FN_GORECOVER =>
                {
                    analyse_func(path, &file, data, name, addr, size).ok()
                }
                Some((addr, size)) => Some(analyse_func(path, &file, data, name, addr, size)?),
                None => None,
            });
        }
        let mut funcs = funcs.into_iter();
        let round_trip = funcs.next().flatten();
        let serve_http = funcs.next().flatten();
        let finish_request = funcs.next().flatten();
        let hijack = funcs.next().flatten();
        let closures: Vec<GoFunc> = funcs.by_ref().take(3).flatten().collect();
        let persist_round_trip = funcs.next().flatten();
        let h2_handler_done = funcs.by_ref().take(2).flatten().next();
        let h2_new_request = funcs.by_ref().take(2).flatten().next();
        let serve_closures: Vec<GoFunc> = funcs.by_ref().take(3).flatten().collect();
        let run_closures: Vec<GoFunc> = funcs.by_ref().take(6).flatten().collect();
        // gorecover is never probed: only its address matters.
        let gorecover = found_addr(&wanted, &found_copy, FN_GORECOVER);
        let recovering = |closures: Vec<GoFunc>| match gorecover {
            Some(target) if arch == "amd64" => {
                closures.into_iter().find(|c| calls(&file, data, c, target))
            }
            _ => None,
        };
        let server_recover = recovering(serve_closures);
        let h2_recover = recovering(run_closures);
        let client_exit = match &round_trip {
            Some(rt) if arch == "amd64" => deferred_exit(&file, data, rt, closures),
            _ => None,
        };
        let client_success = match (&round_trip, &persist_round_trip) {
            (Some(rt), Some(callee)) if arch == "amd64" && client_exit.is_none() => {
                success_exit(&file, data, rt, callee.addr)
            }
            _ => None,
        };
        if round_trip.is_none() && serve_http.is_none() {
            return Err(ObserveError::NoNetHttp(path.to_owned()));
        }
        Ok(GoBinary {
            path: path.to_owned(),
            version_string,
            version,
            arch,
            pie,
            stripped,
            symbols,
            round_trip,
            serve_http,
            finish_request,
            hijack,
            h2_handler_done,
            h2_new_request,
            server_recover,
            h2_recover,
            client_exit,
            client_success,
            types,
            pclntab: pclntab_addr,
            moduledata: module.map(|m| m.addr),
        })
    }
}

/// The address found for `name` among `wanted`.
fn found_addr(wanted: &[&str], found: &[Option<(u64, u64)>], name: &str) -> Option<u64> {
    let i = wanted.iter().position(|w| *w == name)?;
    found.get(i).copied().flatten().map(|(a, _)| a)
}

/// Whether the amd64 function `f` calls `target` directly.
fn calls(file: &object::File<'_>, data: &[u8], f: &GoFunc, target: u64) -> bool {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind};
    let Some(start) = vaddr_to_offset(file, f.addr) else {
        return false;
    };
    let Some(code) = data.get(start as usize..(start + f.size) as usize) else {
        return false;
    };
    Decoder::with_ip(64, code, f.addr, DecoderOptions::NONE)
        .into_iter()
        .any(|i| {
            i.mnemonic() == Mnemonic::Call
                && i.op0_kind() == OpKind::NearBranch64
                && i.near_branch64() == target
        })
}

/// Virtual address → file offset through the PT_LOAD segments.
pub fn vaddr_to_offset(file: &object::File<'_>, addr: u64) -> Option<u64> {
    file.segments().find_map(|seg| {
        let (off, fsize) = seg.file_range();
        let va = seg.address();
        (addr >= va && addr - va < fsize).then(|| addr - va + off)
    })
}

/// The deferred closure of `rt` (the only closure whose funcval `rt` builds) and the returns
/// it covers; `None` when there is no such closure or no return has the deferred shape.
fn deferred_exit(
    file: &object::File<'_>,
    data: &[u8],
    rt: &GoFunc,
    closures: Vec<GoFunc>,
) -> Option<DeferredExit> {
    let start = vaddr_to_offset(file, rt.addr)?;
    let code = data.get(start as usize..start.checked_add(rt.size)? as usize)?;
    let referenced = deferred::rip_lea_targets(code, rt.addr);
    let mut used = closures
        .into_iter()
        .filter(|c| referenced.contains(&c.addr));
    let closure = used.next()?;
    if used.next().is_some() || !closure.entry_emulated {
        return None;
    }
    let returns = deferred::deferred_returns_amd64(code, rt.addr);
    if returns.is_empty() {
        return None;
    }
    let covered_rets = returns.iter().map(|r| start + r.ret).collect();
    Some(DeferredExit {
        closure,
        returns,
        covered_rets,
    })
}

/// roundTrip's error check after its call of `callee` and the RET it covers.
fn success_exit(
    file: &object::File<'_>,
    data: &[u8],
    rt: &GoFunc,
    callee: u64,
) -> Option<SuccessExit> {
    let start = vaddr_to_offset(file, rt.addr)?;
    let code = data.get(start as usize..start.checked_add(rt.size)? as usize)?;
    let check = success::success_check_amd64(code, rt.addr, callee)?;
    Some(SuccessExit {
        probe_offset: start + check.probe,
        covered_ret: start + check.ret,
    })
}

fn analyse_func(
    path: &Path,
    file: &object::File<'_>,
    data: &[u8],
    name: &str,
    addr: u64,
    size: u64,
) -> Result<GoFunc, ObserveError> {
    let bad = |what: String| ObserveError::Malformed {
        path: path.to_owned(),
        what: format!("{name}: {what}"),
    };
    let off = vaddr_to_offset(file, addr)
        .ok_or_else(|| bad(format!("address {addr:#x} is in no loaded segment")))?;
    if size == 0 || size > 1 << 20 {
        return Err(bad(format!("implausible size {size}")));
    }
    let code = off
        .checked_add(size)
        .and_then(|end| data.get(off as usize..end as usize))
        .ok_or_else(|| bad("code extends past the end of the file".into()))?;
    let (entry, rets, entry_emulated) = if HOST_ARCH == "arm64" {
        let (entry, rets) = find_rets_arm64(code);
        (entry, rets, false)
    } else {
        let (entry, rets) = find_rets_amd64(code, addr);
        (entry, rets, emulated_amd64(&code[entry as usize..]))
    };
    if rets.is_empty() {
        return Err(bad("no RET instruction found".into()));
    }
    Ok(GoFunc {
        name: name.to_owned(),
        addr,
        size,
        entry_offset: off + entry,
        entry_addr: addr + entry,
        ret_offsets: rets.into_iter().map(|r| off + r).collect(),
        entry_emulated,
    })
}

/// The Go name of the architecture this ebpfctl (and its probe) was built for.
pub const HOST_ARCH: &str = if cfg!(target_arch = "aarch64") {
    "arm64"
} else {
    "amd64"
};

/// arm64: fixed 4-byte instructions; Go returns with `RET` (x30), 0xd65f03c0.
pub fn find_rets_arm64(code: &[u8]) -> (u64, Vec<u64>) {
    let rets = code
        .chunks_exact(4)
        .enumerate()
        .filter(|(_, w)| u32::from_le_bytes([w[0], w[1], w[2], w[3]]) == 0xd65f_03c0)
        .map(|(i, _)| i as u64 * 4)
        .collect();
    (0, rets)
}

/// Decodes x86-64 `code` (loaded at `ip`) and returns (offset of the entry probe, offsets
/// of every RET). Decoding is linear: Go puts no data inside functions, only INT3 padding
/// after the last instruction.
///
/// The entry probe skips an ENDBR64 and, when the function opens with Go's stack check
/// (`[lea r12, [rsp-N];] cmp rsp|r12, [r14+16]; jbe morestack`), sits on the conditional
/// jump: the kernel emulates jumps, while any other probed instruction is single-stepped
/// out of line (a second trap per hit). Arguments and R14 are unchanged at that point.
pub fn find_rets_amd64(code: &[u8], ip: u64) -> (u64, Vec<u64>) {
    use iced_x86::{Code, Decoder, DecoderOptions, Mnemonic, Register};
    let mut dec = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut rets = Vec::new();
    let mut entry = 0;
    let mut prologue = true;
    let mut saw_stack_check = false;
    let mut index = 0;
    while dec.can_decode() {
        let insn = dec.decode();
        index += 1;
        if insn.is_invalid() {
            prologue = false;
            continue;
        }
        if prologue && index <= 4 {
            let off = insn.ip() - ip;
            match insn.mnemonic() {
                Mnemonic::Endbr64 if index == 1 => entry = off + insn.len() as u64,
                Mnemonic::Lea if insn.op0_register() == Register::R12 => {}
                Mnemonic::Cmp
                    if insn.memory_base() == Register::R14
                        && insn.memory_displacement64() == 16 =>
                {
                    saw_stack_check = true;
                }
                Mnemonic::Jbe
                | Mnemonic::Jb
                | Mnemonic::Ja
                | Mnemonic::Jae
                | Mnemonic::Jl
                | Mnemonic::Jle
                | Mnemonic::Jg
                | Mnemonic::Jge
                    if saw_stack_check =>
                {
                    entry = off;
                    prologue = false;
                }
                _ => prologue = false,
            }
        }
        if insn.code() == Code::Retnq
            || insn.code() == Code::Retnq_imm16
            || insn.mnemonic() == Mnemonic::Ret
        {
            rets.push(insn.ip() - ip);
        }
    }
    (entry, rets)
}

/// Whether the kernel's x86 uprobe code emulates the first instruction of `code` instead of
/// single-stepping it: relative jumps and calls, `push reg` and `nop` (not multi-byte nops).
pub fn emulated_amd64(code: &[u8]) -> bool {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic, OpKind};
    let insn = Decoder::new(64, code, DecoderOptions::NONE).decode();
    match insn.mnemonic() {
        // The kernel does not emulate these relative branches.
        Mnemonic::Loop
        | Mnemonic::Loope
        | Mnemonic::Loopne
        | Mnemonic::Jrcxz
        | Mnemonic::Jecxz
        | Mnemonic::Xbegin => false,
        // jmp/jcc/call rel8/rel32
        _ if insn.op0_kind() == OpKind::NearBranch64 => true,
        Mnemonic::Push => insn.op0_kind() == OpKind::Register,
        Mnemonic::Nop => insn.len() == 1,
        _ => false,
    }
}

fn read_buildinfo_version(file: &object::File<'_>, data: &[u8]) -> Option<String> {
    // The section keeps its name in stripped binaries; fall back to scanning data segments.
    let (start, bi) = match file.section_by_name(".go.buildinfo") {
        Some(s) => {
            let (off, len) = s.file_range()?;
            (
                off as usize,
                data.get(off as usize..off.checked_add(len)? as usize)?,
            )
        }
        None => {
            let pos = data
                .windows(BUILDINFO_MAGIC.len())
                .position(|w| w == BUILDINFO_MAGIC)?;
            (pos, &data[pos..])
        }
    };
    let _ = start;
    if bi.len() < 32 || &bi[..14] != BUILDINFO_MAGIC {
        return None;
    }
    let ptr_size = bi[14] as usize;
    let flags = bi[15];
    if flags & 2 != 0 {
        // Go >= 1.18: inline varint-prefixed strings after the 32-byte header.
        let (v, _) = read_varint_string(&bi[32..])?;
        return Some(v);
    }
    // Go < 1.18: pointers to string headers.
    let big = flags & 1 != 0;
    let rd = |b: &[u8]| -> Option<u64> {
        Some(match (ptr_size, big) {
            (8, false) => u64::from_le_bytes(b.get(..8)?.try_into().ok()?),
            (8, true) => u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
            (4, false) => u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as u64,
            (4, true) => u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as u64,
            _ => return None,
        })
    };
    let hdr_addr = rd(&bi[16..])?;
    let hdr_off = vaddr_to_offset(file, hdr_addr)? as usize;
    let str_addr = rd(data.get(hdr_off..)?)?;
    let str_len = rd(data.get(hdr_off.checked_add(ptr_size)?..)?)? as usize;
    let str_off = vaddr_to_offset(file, str_addr)? as usize;
    let s = data.get(str_off..str_off.checked_add(str_len)?)?;
    Some(String::from_utf8_lossy(s).into_owned())
}

fn read_varint_string(b: &[u8]) -> Option<(String, usize)> {
    let mut len: u64 = 0;
    let mut shift = 0;
    let mut i = 0;
    loop {
        let byte = *b.get(i)?;
        len |= ((byte & 0x7f) as u64) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
    let end = i.checked_add(usize::try_from(len).ok()?)?;
    let s = b.get(i..end)?;
    Some((String::from_utf8_lossy(s).into_owned(), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            GoVersion::parse("go1.21.13"),
            Some(GoVersion {
                major: 1,
                minor: 21,
                patch: 13
            })
        );
        assert_eq!(
            GoVersion::parse("go1.22rc1"),
            Some(GoVersion {
                major: 1,
                minor: 22,
                patch: 0
            })
        );
        assert_eq!(
            GoVersion::parse("go1.27.3 X:foo"),
            Some(GoVersion {
                major: 1,
                minor: 27,
                patch: 3
            })
        );
        assert_eq!(GoVersion::parse("devel +abc"), None);
        assert!(GoVersion::parse("go1.16.15").unwrap() < GoVersion::MIN_SUPPORTED);
    }

    #[test]
    fn rets_and_endbr() {
        // endbr64; xor eax,eax; ret; nop; ret 8; int3
        let code = [
            0xf3, 0x0f, 0x1e, 0xfa, 0x31, 0xc0, 0xc3, 0x90, 0xc2, 0x08, 0x00, 0xcc,
        ];
        let (skip, rets) = find_rets_amd64(&code, 0x1000);
        assert_eq!(skip, 4);
        assert_eq!(rets, vec![6, 8]);
        // lea r12,[rsp-0x120]; cmp r12,[r14+0x10]; jbe +0x10; push rbp; ret
        let code = [
            0x4c, 0x8d, 0xa4, 0x24, 0xe0, 0xfe, 0xff, 0xff, 0x4d, 0x3b, 0x66, 0x10, 0x0f, 0x86,
            0x10, 0x00, 0x00, 0x00, 0x55, 0xc3,
        ];
        let (entry, rets) = find_rets_amd64(&code, 0x1000);
        assert_eq!(entry, 12);
        assert_eq!(rets, vec![19]);
        // cmp rsp,[r14+0x10]; jbe; push rbp; ret
        let code = [0x49, 0x3b, 0x66, 0x10, 0x76, 0x05, 0x55, 0xc3];
        let (entry, _) = find_rets_amd64(&code, 0x1000);
        assert_eq!(entry, 4);
    }

    #[test]
    fn emulated_instructions() {
        let yes: &[&[u8]] = &[
            &[0x76, 0x05],                         // jbe rel8
            &[0x0f, 0x86, 0x10, 0x00, 0x00, 0x00], // jbe rel32
            &[0xeb, 0x00],                         // jmp rel8
            &[0xe8, 0x00, 0x00, 0x00, 0x00],       // call rel32
            &[0x55],                               // push rbp
            &[0x90],                               // nop
        ];
        let no: &[&[u8]] = &[
            &[0xc3],                         // ret
            &[0x5d],                         // pop rbp
            &[0x49, 0x3b, 0x66, 0x10],       // cmp rsp,[r14+0x10]
            &[0x0f, 0x1f, 0x44, 0x00, 0x00], // nopl 0x0(%rax,%rax,1)
            &[0xff, 0xd0],                   // call rax
            &[0x48, 0x83, 0xc4, 0x10],       // add rsp,0x10
        ];
        for c in yes {
            assert!(emulated_amd64(c), "{c:02x?}");
        }
        for c in no {
            assert!(!emulated_amd64(c), "{c:02x?}");
        }
    }

    #[test]
    fn arm64_rets() {
        // mov x0, x1; ret; nop; ret
        let code = [
            0xe0, 0x03, 0x01, 0xaa, 0xc0, 0x03, 0x5f, 0xd6, 0x1f, 0x20, 0x03, 0xd5, 0xc0, 0x03,
            0x5f, 0xd6,
        ];
        assert_eq!(find_rets_arm64(&code), (0, vec![4, 12]));
    }

    #[test]
    fn not_elf() {
        let e = GoBinary::parse(Path::new("x"), b"#!/bin/sh\n").unwrap_err();
        assert!(matches!(e, ObserveError::NotElf(_)));
    }
}
