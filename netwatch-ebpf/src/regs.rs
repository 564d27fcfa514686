//! System-call arguments at `sys_exit`, read from the registers the task saved on entry.
//!
//! Exit-only programs are about half the cost of an enter/exit pair that stashes the
//! arguments in a map (measured: ../shared/TOOLCHAIN.md), and leave no in-flight state
//! behind when a syscall never returns. The syscall entry code saves the user registers
//! in `pt_regs` and the handlers do not change the argument slots.

use aya_ebpf::{bindings::pt_regs, helpers::generated::bpf_task_pt_regs};

use crate::kernel::Current;

pub struct SyscallArgs {
    regs: *const pt_regs,
}

impl SyscallArgs {
    /// The current task's saved registers.
    #[inline(always)]
    pub fn of(current: Current) -> Option<Self> {
        // SAFETY: the helper takes the trusted task pointer `Current` holds; the result
        // is a BTF-typed pointer to its pt_regs, which the verifier lets us load from.
        let regs = unsafe { bpf_task_pt_regs(current.task().cast_mut().cast()) } as *const pt_regs;
        if regs.is_null() {
            None
        } else {
            Some(Self { regs })
        }
    }

    /// The syscall number (`orig_ax`: `ax` holds the return value by now).
    #[inline(always)]
    pub fn nr(&self) -> u64 {
        // SAFETY: `regs` is a verifier-checked BTF pointer to struct pt_regs.
        unsafe { (*self.regs).orig_rax }
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
