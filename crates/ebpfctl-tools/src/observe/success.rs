//! Seeing `roundTrip` succeed without probing its RET, for Go before 1.23 (no deferred
//! closure, see `deferred.rs`).
//!
//! `(*Transport).roundTrip` calls `(*persistConn).roundTrip` (HTTP/2 goes through an
//! interface call that jumps to the same place) and tests its error at once:
//!
//! ```text
//! call (*persistConn).roundTrip      ; (*Response, error) in RAX, (RBX, RCX)
//! nopw                                ; (the HTTP/2 branch jumps here or to the test)
//! test rbx, rbx                       ; err == nil?
//! je   success                        ; <- probe: a conditional jump, emulated
//! ...                                 ; error: maybe retry, else return through a RET probe
//! success: [store resp.Request, write-barrier branch] ; return resp, nil: RET
//! ```
//!
//! A probe on the `je` sees the results in their registers; a nil error ends the request
//! there. The success path is followed to its RET: when it is a closed piece of code (one
//! RET, no indirect branch, nothing from outside jumps or falls into it), every run of that
//! RET went through the probe, so the RET needs no probe of its own.
use std::collections::{HashMap, HashSet};

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, OpKind, Register};

/// The probe on roundTrip's error check and the RET it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuccessCheck {
    /// Offset of the `je` from the function's entry.
    pub probe: u64,
    /// Offset of the success path's RET from the function's entry.
    pub ret: u64,
}

/// Longest success path followed, in instructions (Go's is about 15).
const MAX_PATH: usize = 64;

/// Finds the error check right after the only direct call of `callee` in the x86-64
/// function `code` (loaded at `ip`), and the RET its success branch leads to.
pub fn success_check_amd64(code: &[u8], ip: u64, callee: u64) -> Option<SuccessCheck> {
    let insns: Vec<Instruction> = Decoder::with_ip(64, code, ip, DecoderOptions::NONE)
        .into_iter()
        .collect();
    let index: HashMap<u64, usize> = insns.iter().enumerate().map(|(k, i)| (i.ip(), k)).collect();
    // Branch target → indices of the jumps to it.
    let mut sources: HashMap<u64, Vec<usize>> = HashMap::new();
    for (k, i) in insns.iter().enumerate() {
        match i.flow_control() {
            FlowControl::IndirectBranch => return None,
            FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch => {
                if i.op0_kind() != OpKind::NearBranch64 {
                    return None;
                }
                sources.entry(i.near_branch64()).or_default().push(k);
            }
            _ => {}
        }
    }
    let mut calls = insns.iter().enumerate().filter(|(_, i)| {
        i.mnemonic() == Mnemonic::Call
            && i.op0_kind() == OpKind::NearBranch64
            && i.near_branch64() == callee
    });
    let (call, _) = calls.next()?;
    if calls.next().is_some() {
        return None;
    }
    // The results stay in their registers up to the `je`: only NOPs and the test between.
    let mut k = call + 1;
    while insns.get(k)?.mnemonic() == Mnemonic::Nop {
        k += 1;
    }
    let test = insns.get(k)?;
    let je = insns.get(k + 1)?;
    let tests_rbx = test.mnemonic() == Mnemonic::Test
        && test.op0_kind() == OpKind::Register
        && test.op1_kind() == OpKind::Register
        && test.op0_register() == Register::RBX
        && test.op1_register() == Register::RBX;
    if !tests_rbx || je.mnemonic() != Mnemonic::Je || je.op0_kind() != OpKind::NearBranch64 {
        return None;
    }
    // Other ways in (the HTTP/2 branch) must come straight from a call too: a `jmp` right
    // after one, so the registers hold that call's results.
    for at in call + 1..=k + 1 {
        for &s in sources.get(&insns[at].ip()).into_iter().flatten() {
            let from_call = s > 0
                && insns[s].mnemonic() == Mnemonic::Jmp
                && insns[s - 1].flow_control() == FlowControl::IndirectCall;
            if !from_call {
                return None;
            }
        }
    }
    let ret = closed_path_ret(&insns, &index, &sources, je)?;
    Some(SuccessCheck {
        probe: je.ip() - ip,
        ret: ret - ip,
    })
}

/// The one RET reached from `je`'s target, when that code is entered only through `je`.
fn closed_path_ret(
    insns: &[Instruction],
    index: &HashMap<u64, usize>,
    sources: &HashMap<u64, Vec<usize>>,
    je: &Instruction,
) -> Option<u64> {
    let entry = *index.get(&je.near_branch64())?;
    let je_index = *index.get(&je.ip())?;
    let mut seen = HashSet::new();
    let mut todo = vec![entry];
    let mut rets = Vec::new();
    while let Some(k) = todo.pop() {
        if !seen.insert(k) {
            continue;
        }
        if seen.len() > MAX_PATH {
            return None;
        }
        let i = insns.get(k)?;
        match i.flow_control() {
            FlowControl::Return => rets.push(i.ip()),
            FlowControl::UnconditionalBranch => todo.push(*index.get(&i.near_branch64())?),
            FlowControl::ConditionalBranch => {
                todo.push(*index.get(&i.near_branch64())?);
                todo.push(k + 1);
            }
            // Write barriers and the like return here; panics do not return (int3 follows).
            FlowControl::Call | FlowControl::Next => todo.push(k + 1),
            FlowControl::Interrupt | FlowControl::Exception => {}
            _ => return None,
        }
    }
    if rets.len() != 1 {
        return None;
    }
    // Closed: nothing outside jumps into it or falls through into it.
    for &k in &seen {
        for &s in sources.get(&insns[k].ip()).into_iter().flatten() {
            let from_je = k == entry && s == je_index;
            if !seen.contains(&s) && !from_je {
                return None;
            }
        }
        // Alignment NOPs no branch targets only pass on what precedes them.
        let mut p = k;
        while p > 0 && !seen.contains(&(p - 1)) {
            p -= 1;
            let i = &insns[p];
            if i.mnemonic() != Mnemonic::Nop || sources.contains_key(&i.ip()) {
                if falls_through(i) {
                    return None;
                }
                break;
            }
        }
    }
    rets.pop()
}

fn falls_through(i: &Instruction) -> bool {
    !matches!(
        i.flow_control(),
        FlowControl::Return
            | FlowControl::UnconditionalBranch
            | FlowControl::IndirectBranch
            | FlowControl::Interrupt
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLEE: u64 = 0x2000;

    /// At 0x1000: call CALLEE; nopw; test rbx,rbx; je success; mov [rsp+8],rbx; ret(error);
    /// success: cmp dword [rip+0x100],0; jne wb; mov [rax+0x80],rdx; jmp done;
    /// wb: call 0x3000; done: xor ebx,ebx; xor ecx,ecx; add rsp,0x40; pop rbp; ret
    fn code() -> Vec<u8> {
        let mut c = vec![0xe8];
        c.extend_from_slice(&((CALLEE as i64 - 0x1005) as i32).to_le_bytes()); // 0x1000
        c.extend_from_slice(&[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00]); // 0x1005 nopw
        c.extend_from_slice(&[0x48, 0x85, 0xdb]); // 0x100b test rbx,rbx
        c.extend_from_slice(&[0x74, 0x06]); // 0x100e je 0x1016
        c.extend_from_slice(&[0x48, 0x89, 0x5c, 0x24, 0x08]); // 0x1010 mov [rsp+8],rbx
        c.push(0xc3); // 0x1015 ret (error)
        c.extend_from_slice(&[0x83, 0x3d, 0x00, 0x01, 0x00, 0x00, 0x00]); // 0x1016 cmp
        c.extend_from_slice(&[0x75, 0x09]); // 0x101d jne 0x1028
        c.extend_from_slice(&[0x48, 0x89, 0x90, 0x80, 0x00, 0x00, 0x00]); // 0x101f mov
        c.extend_from_slice(&[0xeb, 0x05]); // 0x1026 jmp 0x102d
        c.push(0xe8); // 0x1028 call 0x3000
        c.extend_from_slice(&((0x3000i64 - 0x102d) as i32).to_le_bytes());
        c.extend_from_slice(&[0x31, 0xdb, 0x31, 0xc9]); // 0x102d xor ebx; xor ecx
        c.extend_from_slice(&[0x48, 0x83, 0xc4, 0x40, 0x5d, 0xc3]); // add rsp; pop rbp; ret
        c
    }

    #[test]
    fn finds_the_check_and_its_ret() {
        let c = code();
        assert_eq!(
            success_check_amd64(&c, 0x1000, CALLEE),
            Some(SuccessCheck {
                probe: 0x0e,
                ret: c.len() as u64 - 1
            })
        );
        // Alignment padding after the `jmp done` (before the write-barrier call) is fine.
        let mut c = code();
        c[0x1d..0x1f].copy_from_slice(&[0x75, 0x0a]); // jne 0x1029
        c[0x26..0x28].copy_from_slice(&[0xeb, 0x06]); // jmp 0x102e
        c.insert(0x28, 0x90);
        let found = success_check_amd64(&c, 0x1000, CALLEE);
        assert_eq!(found.map(|f| f.ret), Some(c.len() as u64 - 1));
        // Not the callee: nothing.
        assert_eq!(success_check_amd64(&c, 0x1000, CALLEE + 1), None);
    }

    #[test]
    fn refuses_open_or_unclear_paths() {
        // RBX overwritten between the call and the test (the nopw becomes mov rbx,[rsp]+nop).
        let mut c = code();
        c[5..11].copy_from_slice(&[0x48, 0x8b, 0x1c, 0x24, 0x90, 0x90]);
        assert_eq!(success_check_amd64(&c, 0x1000, CALLEE), None);
        // The error path falls into the success path (its RET becomes a NOP).
        let mut c = code();
        c[0x15] = 0x90;
        assert_eq!(success_check_amd64(&c, 0x1000, CALLEE), None);
        // Two RETs on the success path (the write-barrier call becomes ret + nops).
        let mut c = code();
        c[0x28..0x2d].copy_from_slice(&[0xc3, 0x90, 0x90, 0x90, 0x90]);
        assert_eq!(success_check_amd64(&c, 0x1000, CALLEE), None);
        // An indirect jump anywhere: nothing is trusted.
        let mut c = code();
        c.extend_from_slice(&[0xff, 0xe0]);
        assert_eq!(success_check_amd64(&c, 0x1000, CALLEE), None);
        // A jump into the test from something other than a call's return.
        let mut c = code();
        c.extend_from_slice(&[0xeb, 0x100bu16.wrapping_sub(0x1037 + 2) as u8]); // jmp 0x100b
        assert_eq!(success_check_amd64(&c, 0x1000, CALLEE), None);
    }
}
