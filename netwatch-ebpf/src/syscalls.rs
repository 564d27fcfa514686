//! The syscall results netwatch traces, from one raw tracepoint on `sys_exit` that
//! dispatches on the syscall number to the source modules (bind, connect, listen,
//! sockio).
//!
//! One program instead of twenty per-syscall tracepoints: it is verified and attached
//! once (start-up and detach cost a grace period per attachment), and measured here
//! (../shared/TOOLCHAIN.md) it costs less on the traced syscalls (+80 ns against
//! +113 ns for a classic sys_exit_* program) and keeps more of a failure storm's rate.
//! Its price is +80 ns instead of +35 ns on syscalls netwatch does not trace.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use netwatch_common::Syscall;

use crate::{bind, connect, listen, regs::SyscallArgs, sockio};

// x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
const READ: u64 = 0;
const WRITE: u64 = 1;
const READV: u64 = 19;
const WRITEV: u64 = 20;
const SENDFILE: u64 = 40;
const CONNECT: u64 = 42;
const ACCEPT: u64 = 43;
const SENDTO: u64 = 44;
const RECVFROM: u64 = 45;
const SENDMSG: u64 = 46;
const RECVMSG: u64 = 47;
const BIND: u64 = 49;
const LISTEN: u64 = 50;
const SPLICE: u64 = 275;
const ACCEPT4: u64 = 288;
const PWRITEV: u64 = 296;
const RECVMMSG: u64 = 299;
const SENDMMSG: u64 = 307;
const PWRITEV2: u64 = 328;

/// `sys_exit(struct pt_regs *regs, long ret)`.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    let ret: i64 = ctx.arg(1);
    let Some(args) = SyscallArgs::current() else {
        return 0;
    };
    let nr = args.nr();
    // Successes matter only for bind, listen, accept and connect: every other
    // syscall that succeeded (nearly all of them) leaves here.
    if ret >= 0 && !matches!(nr, BIND | LISTEN | ACCEPT | ACCEPT4 | CONNECT) {
        return 0;
    }
    let _ = match nr {
        BIND => bind::exit(ret, &args),
        LISTEN => listen::exit(ret, &args),
        ACCEPT | ACCEPT4 => listen::accepted(ret),
        CONNECT => connect::exit(ret, &args),
        // One call site for the whole send/receive family: the verifier checks the
        // handler once, not once per syscall.
        _ => match sockio_syscall(nr) {
            Some(syscall) => sockio::exit(ret, &args, syscall),
            None => None,
        },
    };
    0
}

#[inline(always)]
fn sockio_syscall(nr: u64) -> Option<Syscall> {
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
