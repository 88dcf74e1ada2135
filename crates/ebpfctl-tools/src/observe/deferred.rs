//! Seeing a function return without probing its RETs, when it has a deferred closure.
//!
//! A probe on a RET is single-stepped out of line by the kernel: a second trap per hit that
//! costs tens of microseconds under some hypervisors, while a probe on a jump (Go's stack
//! check at a function entry) is emulated. Since Go 1.23, `(*Transport).roundTrip` defers a
//! closure (`defer func() { if err != nil { cancel(err) } }()`). Go open-codes such defers:
//! each return stores the results in their frame slots, calls the closure through its
//! funcval (`MOV reg, [RDX]; CALL reg`), reloads the results and returns:
//!
//! ```text
//! mov rdx, [rsp+0x190]; mov rax, [rdx]; call rax      ; the deferred closure
//! mov rbx, [rsp+0xe8]; mov rax, [rsp+0x80]; mov rcx, [rsp+0xf0]
//! add rsp, 0x198; pop rbp; ret
//! ```
//!
//! For such a RET the results are already in the frame when the closure is entered, so a
//! probe at the closure's entry (emulated) replaces the probe on the RET. The probe checks
//! the return address (relative to the probe's address, so PIE and ASLR do not matter) to
//! know which return it is and where the results are: RAX, RBX, RCX at `[RSP + 8 + slot]`.
//! RETs that do not have this exact shape keep their RET probe.
use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

/// Where one result register is reloaded from after the deferred call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultSlot {
    /// `[RSP + disp]` of the function's frame (RSP as at the CALL).
    Frame(i32),
    /// `xor reg, reg`.
    Zero,
}

/// A RET reached from a deferred call only through reloads of the results.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeferredReturn {
    /// Offset of the RET from the function's entry.
    pub ret: u64,
    /// Virtual address of the instruction after the CALL (the closure's return address).
    pub return_site: u64,
    /// Result registers RAX, RBX, RCX (Go's first three integer results).
    pub results: [ResultSlot; 3],
}

/// Finds the RETs of the x86-64 function `code` (loaded at `ip`) that follow a call of a
/// closure through RDX and reloads of RAX, RBX and RCX from the frame. Empty when the
/// function has an indirect jump (its targets are unknown, one could land in a tail).
pub fn deferred_returns_amd64(code: &[u8], ip: u64) -> Vec<DeferredReturn> {
    let insns: Vec<Instruction> = Decoder::with_ip(64, code, ip, DecoderOptions::NONE)
        .into_iter()
        .collect();
    let mut targets = std::collections::HashSet::new();
    for i in &insns {
        match i.mnemonic() {
            Mnemonic::Jmp if i.op0_kind() != OpKind::NearBranch64 => return Vec::new(),
            _ if i.op0_kind() == OpKind::NearBranch64 && i.mnemonic() != Mnemonic::Call => {
                targets.insert(i.near_branch64());
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (r, ret) in insns.iter().enumerate() {
        if ret.code() != Code::Retnq {
            continue;
        }
        // Walk back over the tail to the CALL; nothing may jump into the tail.
        if targets.contains(&ret.ip()) {
            continue;
        }
        let mut k = r;
        while k > 0 && tail_insn(&insns[k - 1]) && !targets.contains(&insns[k - 1].ip()) {
            k -= 1;
        }
        if k < 2 {
            continue;
        }
        let call = &insns[k - 1];
        let load = &insns[k - 2];
        let through_rdx = call.mnemonic() == Mnemonic::Call
            && call.op0_kind() == OpKind::Register
            && load.mnemonic() == Mnemonic::Mov
            && load.op0_register() == call.op0_register()
            && load.op1_kind() == OpKind::Memory
            && load.memory_base() == Register::RDX
            && load.memory_index() == Register::None
            && load.memory_displacement64() == 0;
        if !through_rdx {
            continue;
        }
        if let Some(results) = simulate(&insns[k..r]) {
            out.push(DeferredReturn {
                ret: ret.ip() - ip,
                return_site: call.next_ip(),
                results,
            });
        }
    }
    out
}

/// Addresses loaded by RIP-relative LEAs in `code` (at `ip`): the closures a function
/// builds funcvals for.
pub fn rip_lea_targets(code: &[u8], ip: u64) -> Vec<u64> {
    Decoder::with_ip(64, code, ip, DecoderOptions::NONE)
        .into_iter()
        .filter(|i| i.mnemonic() == Mnemonic::Lea && i.memory_base() == Register::RIP)
        .map(|i| i.memory_displacement64())
        .collect()
}

/// Instructions allowed between the deferred call and the RET.
fn tail_insn(i: &Instruction) -> bool {
    is_frame_load(i)
        || is_zeroing(i)
        || (i.mnemonic() == Mnemonic::Add && i.op0_register() == Register::RSP)
        || (i.mnemonic() == Mnemonic::Pop && i.op0_register() == Register::RBP)
}

fn is_frame_load(i: &Instruction) -> bool {
    i.code() == Code::Mov_r64_rm64
        && i.op1_kind() == OpKind::Memory
        && i.memory_base() == Register::RSP
        && i.memory_index() == Register::None
}

fn is_zeroing(i: &Instruction) -> bool {
    i.mnemonic() == Mnemonic::Xor
        && i.op0_kind() == OpKind::Register
        && i.op1_kind() == OpKind::Register
        && i.op0_register() == i.op1_register()
}

/// 0, 1, 2 for RAX, RBX, RCX or their 32-bit halves (writing those zero-extends).
fn result_index(r: Register) -> Option<usize> {
    match r {
        Register::RAX | Register::EAX => Some(0),
        Register::RBX | Register::EBX => Some(1),
        Register::RCX | Register::ECX => Some(2),
        _ => None,
    }
}

/// The source of RAX, RBX, RCX at the end of `tail`; `None` if one is not reloaded, or a
/// load follows the stack adjustment (its displacement would be off).
fn simulate(tail: &[Instruction]) -> Option<[ResultSlot; 3]> {
    let mut state: [Option<ResultSlot>; 3] = [None; 3];
    let mut adjusted = false;
    for i in tail {
        let slot = result_index(i.op0_register());
        if is_frame_load(i) {
            if adjusted {
                return None;
            }
            if let Some(s) = slot {
                state[s] = Some(ResultSlot::Frame(i.memory_displacement64() as i64 as i32));
            }
        } else if is_zeroing(i) {
            if let Some(s) = slot {
                state[s] = Some(ResultSlot::Zero);
            }
        } else {
            adjusted = true;
        }
    }
    Some([state[0]?, state[1]?, state[2]?])
}

#[cfg(test)]
mod tests {
    use super::*;

    // mov rdx,[rsp+0x190]; mov rax,[rdx]; call rax;
    // mov rbx,[rsp+0xe8]; mov rax,[rsp+0x80]; xor ecx,ecx; add rsp,0x198; pop rbp; ret
    const DEFERRED: &[u8] = &[
        0x48, 0x8b, 0x94, 0x24, 0x90, 0x01, 0x00, 0x00, 0x48, 0x8b, 0x02, 0xff, 0xd0, 0x48, 0x8b,
        0x9c, 0x24, 0xe8, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x84, 0x24, 0x80, 0x00, 0x00, 0x00, 0x31,
        0xc9, 0x48, 0x81, 0xc4, 0x98, 0x01, 0x00, 0x00, 0x5d, 0xc3,
    ];

    #[test]
    fn finds_a_deferred_return() {
        let found = deferred_returns_amd64(DEFERRED, 0x1000);
        assert_eq!(
            found,
            vec![DeferredReturn {
                ret: 39,
                return_site: 0x100d,
                results: [
                    ResultSlot::Frame(0x80),
                    ResultSlot::Frame(0xe8),
                    ResultSlot::Zero
                ],
            }]
        );
    }

    #[test]
    fn refuses_other_shapes() {
        // A call not through RDX's funcval: mov rax,[rcx] instead of [rdx].
        let mut code = DEFERRED.to_vec();
        code[10] = 0x01;
        assert!(deferred_returns_amd64(&code, 0x1000).is_empty());
        // RCX not reloaded: `xor ecx,ecx` replaced by two NOPs.
        let mut code = DEFERRED.to_vec();
        code[29] = 0x90;
        code[30] = 0x90;
        assert!(deferred_returns_amd64(&code, 0x1000).is_empty());
        // A jump into the tail (jmp to the first reload) makes the RET unsafe.
        let mut code = vec![0xe9, 0x0d, 0x00, 0x00, 0x00]; // jmp +13 → 0x1012
        code.extend_from_slice(DEFERRED);
        assert!(deferred_returns_amd64(&code, 0x1000).is_empty());
        // An indirect jump anywhere: nothing is trusted.
        let mut code = DEFERRED.to_vec();
        code.extend_from_slice(&[0xff, 0xe0]); // jmp rax
        assert!(deferred_returns_amd64(&code, 0x1000).is_empty());
    }
}
