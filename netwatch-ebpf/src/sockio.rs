//! Errors of the send family (write, writev, pwritev, pwritev2, sendto, sendmsg,
//! sendmmsg, sendfile64, splice) and the receive family (read, readv, recvfrom,
//! recvmsg, recvmmsg), from their `syscalls:sys_exit_*` tracepoints.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use netwatch_common::{
    EventKind, FAMILY_RECV, FAMILY_SEND, FAMILY_SENDFILE, Syscall, sockio::SockIoEvent,
};

use crate::{
    emit, kernel,
    maps::{self, set_owner},
    regs::{self, SyscallArgs},
};

const EINTR: i64 = 4;
const EAGAIN: i64 = 11;
const EPIPE: i32 = 32;
/// ERESTARTSYS and friends (include/linux/errno.h) never reach user space.
const ERESTART_FIRST: i64 = 512;

macro_rules! sys_exit {
    ($($name:ident => $syscall:ident),* $(,)?) => {$(
        // Attached to syscalls:$name by the loader (the name is the function's).
        #[tracepoint]
        pub fn $name(ctx: TracePointContext) -> u32 {
            handle(&ctx, Syscall::$syscall);
            0
        }
    )*};
}

sys_exit! {
    sys_exit_write => Write,
    sys_exit_writev => Writev,
    sys_exit_pwritev => Pwritev,
    sys_exit_pwritev2 => Pwritev2,
    sys_exit_sendto => Sendto,
    sys_exit_sendmsg => Sendmsg,
    sys_exit_sendmmsg => Sendmmsg,
    sys_exit_sendfile64 => Sendfile64,
    sys_exit_splice => Splice,
    sys_exit_read => Read,
    sys_exit_readv => Readv,
    sys_exit_recvfrom => Recvfrom,
    sys_exit_recvmsg => Recvmsg,
    sys_exit_recvmmsg => Recvmmsg,
}

/// Syscalls that take any fd: on a file or pipe their errors are not netwatch's
/// business, except EPIPE (the SIGPIPE story is the same on a pipe).
#[inline(always)]
fn any_fd(syscall: Syscall) -> bool {
    matches!(
        syscall,
        Syscall::Write
            | Syscall::Writev
            | Syscall::Pwritev
            | Syscall::Pwritev2
            | Syscall::Sendfile64
            | Syscall::Splice
            | Syscall::Read
            | Syscall::Readv
    )
}

#[inline(always)]
fn handle(ctx: &TracePointContext, syscall: Syscall) -> Option<()> {
    let ret = regs::sys_exit_ret(ctx);
    // Success, "try again", and interrupted calls are not failures.
    if ret >= 0 || ret == -EAGAIN || ret == -EINTR || ret <= -ERESTART_FIRST {
        return None;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    if !maps::watched((pid_tgid >> 32) as u32) {
        return None;
    }
    let args = SyscallArgs::current()?;
    // splice(fd_in, off_in, fd_out, off_out, len, flags): the socket being written
    // is fd_out. Every other call here takes its socket first.
    let fd = if matches!(syscall, Syscall::Splice) {
        args.arg(2)
    } else {
        args.arg(0)
    } as i32;
    let errno = -ret as i32;
    let what = kernel::fd_lookup(fd);
    if any_fd(syscall) && matches!(what, kernel::Fd::Other) && errno != EPIPE {
        return None;
    }
    let header = emit::header(EventKind::SockIo, pid_tgid);
    if let kernel::Fd::Socket(sk) = what {
        set_owner(sk, pid_tgid, header.comm);
    }
    let family = match syscall {
        Syscall::Sendfile64 => FAMILY_SENDFILE,
        s if s.is_send() => FAMILY_SEND,
        _ => FAMILY_RECV,
    };
    maps::count((pid_tgid >> 32) as u32, errno, family);
    let mut slot = emit::reserve::<SockIoEvent>(EventKind::SockIo)?;
    let ev = slot.zeroed();
    ev.header = header;
    ev.errno = errno;
    ev.fd = fd;
    ev.syscall = syscall as u32;
    kernel::fill_fd(&what, &mut ev.sock);
    slot.submit();
    Some(())
}
