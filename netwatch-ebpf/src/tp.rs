//! Reading a classic tracepoint's record at the offsets the loader read from tracefs
//! (`TpLayout`): offsets are load-time constants, not immediates, so the read goes
//! through a checked copy; a field the running kernel lacks is `ABSENT`.

use aya_ebpf::programs::TracePointContext;
use netwatch_common::ABSENT;

#[inline(always)]
pub fn field<T>(ctx: &TracePointContext, off: u32) -> Option<T> {
    if off == ABSENT {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel checks the address.
    unsafe { ctx.read_at::<T>(off as usize) }.ok()
}
