//! What the syscall programs share: the `syscalls:sys_exit_*` record, and the
//! syscall numbers that name the caller of a socket send or receive.
//!
//! netwatch hooks syscall exits with one classic tracepoint program each, never the
//! generic `sys_exit`: bind, connect, listen, accept and accept4 (in the source
//! modules), and the socket calls that make several operations (sendfile64, splice,
//! sendmmsg, recvmmsg: sockio.rs). The hot socket I/O (write, read, send, recv...) is
//! traced below the syscall, at `sock:sock_send_length` and `sock:sock_recv_length`
//! (sockio.rs); kernels before 6.3 have neither, and there those calls' exits are
//! hooked too. Measured here
//! (../shared/TOOLCHAIN.md, docs/BENCHMARKS.md): any syscall tracepoint puts every
//! syscall of the host on the slow path, about +35 ns each, and a program on the
//! generic `sys_exit` adds its own run to that, about +100 ns on every syscall of
//! every process, where a classic per-syscall tracepoint runs only for its syscall.

use aya_ebpf::{EbpfContext as _, programs::TracePointContext};
use netwatch_common::{SYS_EXIT_NR_OFFSET, SYS_EXIT_RET_OFFSET, Syscall};

/// The return value in a `syscalls:sys_exit_*` record (`struct syscall_trace_exit`
/// in kernel/trace/trace_syscalls.c; the loader checks the offset in tracefs).
#[inline(always)]
pub fn ret(ctx: &TracePointContext) -> i64 {
    // SAFETY: a direct load from the tracepoint record at a constant offset inside it,
    // which the verifier checks.
    unsafe { *(ctx.as_ptr().cast::<u8>().add(SYS_EXIT_RET_OFFSET as usize) as *const i64) }
}

/// The syscall number in a `syscalls:sys_exit_*` record.
#[inline(always)]
pub fn nr(ctx: &TracePointContext) -> u64 {
    // SAFETY: as in `ret`.
    unsafe { *(ctx.as_ptr().cast::<u8>().add(SYS_EXIT_NR_OFFSET as usize) as *const i32) as u64 }
}

// x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
/// accept4(2): shares its exit program with accept(2).
pub const ACCEPT4: u64 = 288;
const READ: u64 = 0;
const WRITE: u64 = 1;
const READV: u64 = 19;
const WRITEV: u64 = 20;
const SENDFILE: u64 = 40;
const SENDTO: u64 = 44;
const RECVFROM: u64 = 45;
const SENDMSG: u64 = 46;
const RECVMSG: u64 = 47;
const SPLICE: u64 = 275;
const PWRITEV: u64 = 296;
const RECVMMSG: u64 = 299;
const SENDMMSG: u64 = 307;
const PWRITEV2: u64 = 328;

/// The send- or receive-family syscall with number `nr`, if it is one.
#[inline(always)]
pub fn sockio(nr: u64) -> Option<Syscall> {
    Some(match nr {
        WRITE => Syscall::Write,
        WRITEV => Syscall::Writev,
        PWRITEV => Syscall::Pwritev,
        PWRITEV2 => Syscall::Pwritev2,
        SENDTO => Syscall::Sendto,
        SENDMSG => Syscall::Sendmsg,
        SENDMMSG => Syscall::Sendmmsg,
        SENDFILE => Syscall::Sendfile64,
        SPLICE => Syscall::Splice,
        READ => Syscall::Read,
        READV => Syscall::Readv,
        RECVFROM => Syscall::Recvfrom,
        RECVMSG => Syscall::Recvmsg,
        RECVMMSG => Syscall::Recvmmsg,
        _ => return None,
    })
}
