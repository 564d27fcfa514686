//! System-call arguments at `sys_exit`, read from the registers the task saved on entry.
//!
//! Exit-only programs are about half the cost of an enter/exit pair that stashes the
//! arguments in a map (measured: ../shared/TOOLCHAIN.md), and leave no in-flight state
//! behind when a syscall never returns. The syscall entry code saves the user registers
//! in `pt_regs` and the handlers do not change the argument slots.

use aya_ebpf::{
    EbpfContext as _,
    bindings::pt_regs,
    helpers::generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    programs::TracePointContext,
};

use crate::maps::CONFIG;

pub struct SyscallArgs {
    regs: *const pt_regs,
}

impl SyscallArgs {
    #[inline(always)]
    pub fn current() -> Option<Self> {
        // SAFETY: both helpers are valid in tracepoint programs; the result is a
        // BTF-typed pointer to the current task's pt_regs, which the verifier lets us load from.
        let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) } as *const pt_regs;
        if regs.is_null() {
            None
        } else {
            Some(Self { regs })
        }
    }

    /// Argument `n` (0-based) of the x86_64 syscall ABI: rdi, rsi, rdx, r10, r8, r9.
    #[inline(always)]
    pub fn arg(&self, n: u32) -> u64 {
        // SAFETY: `regs` is a verifier-checked BTF pointer to struct pt_regs.
        let r = unsafe { &*self.regs };
        match n {
            0 => r.rdi,
            1 => r.rsi,
            2 => r.rdx,
            3 => r.r10,
            4 => r.r8,
            _ => r.r9,
        }
    }
}

/// The `ret` field of a `syscalls:sys_exit_*` record, at the offset the loader read
/// from tracefs (`events/syscalls/sys_exit_*/format`).
///
/// The verifier only allows context loads at an immediate offset, so each plausible
/// offset gets its own load; the offset is a load-time constant, so the verifier
/// prunes every arm but one. Any other layout falls back to a checked copy.
#[inline(always)]
pub fn sys_exit_ret(ctx: &TracePointContext) -> i64 {
    let base = ctx.as_ptr() as *const u8;
    // SAFETY: context loads at immediate offsets, checked by the verifier.
    unsafe {
        match CONFIG.load().sys_exit_ret_offset {
            16 => *base.add(16).cast::<i64>(),
            24 => *base.add(24).cast::<i64>(),
            off => ctx.read_at::<i64>(off as usize).unwrap_or(0),
        }
    }
}
