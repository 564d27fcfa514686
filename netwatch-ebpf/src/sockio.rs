//! Errors of the send family (write, writev, pwritev, pwritev2, sendto, sendmsg,
//! sendmmsg, sendfile64, splice) and the receive family (read, readv, recvfrom,
//! recvmsg, recvmmsg) on sockets, and EPIPE on pipes.
//!
//! Calls that make one socket operation (write, read, send, recv and their vector
//! forms): raw tracepoints `sock_send_length` and `sock_recv_length` (net/socket.c),
//! which every socket send and receive passes with the protocol's result. They run for
//! socket I/O only, not for every syscall of the host, and hand over the `struct sock`
//! itself: no fd walk. The syscall and the fd come from the task's saved registers, on
//! failures only.
//!
//! Calls that make several (sendfile64, splice, sendmmsg, recvmmsg) return a partial
//! count when a later operation fails, and the error is not the caller's: they are
//! traced at their own exits, `syscalls:sys_exit_*`, where the result is the caller's.
//!
//! Kernels without those two raw tracepoints (before Linux 6.3): the exits of the
//! calls that make one operation too, with the same program; on those only a socket's
//! failure is reported, found by the fd walk the failure alone pays for.
//!
//! Pipes: a write to a pipe without readers raises SIGPIPE on the writer before it
//! returns EPIPE (fs/pipe.c), ignored or not; `signal.rs` reports that EPIPE through
//! [`pipe_epipe`].

use aya_ebpf::{
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use netwatch_common::{
    EventKind, Family, Syscall,
    errno::{EAGAIN, EINTR, EPIPE, ERESTARTSYS},
    sockio::SockIoEvent,
};

use crate::{
    emit,
    kernel::{self, Current, Fd, Socket},
    maps::{self, set_owner},
    regs::SyscallArgs,
    syscalls,
};

/// `sock_send_length` and `sock_recv_length` (attached to both):
/// `(struct sock *sk, int ret, int flags)`, after the protocol's sendmsg or recvmsg.
#[raw_tracepoint]
pub fn sock_length(ctx: RawTracePointContext) -> i32 {
    let ret = ctx.arg::<u64>(1) as i32;
    if ret < 0 {
        let _ = failed(&ctx, ret);
    }
    0
}

/// A socket send or receive failed with `ret`.
#[inline(always)]
fn failed(ctx: &RawTracePointContext, ret: i32) -> Option<()> {
    let errno = -ret;
    // "Try again" and interrupted calls are not failures.
    if errno == EAGAIN || errno == EINTR || errno >= ERESTARTSYS {
        return None;
    }
    let current = Current::get();
    if !maps::selected(current.tgid()) {
        return None;
    }
    // Which syscall: I/O the kernel does on its own behalf, or submitted through
    // io_uring, has none of these numbers and is not a process's failure to report.
    let args = SyscallArgs::of(current)?;
    let syscall = syscalls::sockio(args.nr()).filter(|s| !several(*s))?;
    // The socket itself, from the tracepoint: no fd walk (`kernel::fill_sock` reads
    // its type for the record).
    let socket = Fd::Socket(Socket {
        sk: ctx.arg(0),
        sock_type: 0,
    });
    report(current, errno, fd(&args, syscall), syscall, &socket)
}

/// Whether `syscall` may make several socket operations (see the module's comment).
#[inline(always)]
fn several(syscall: Syscall) -> bool {
    matches!(
        syscall,
        Syscall::Sendfile64 | Syscall::Splice | Syscall::Sendmmsg | Syscall::Recvmmsg
    )
}

/// `syscalls:sys_exit_sendfile64`, `_splice`, `_sendmmsg` and `_recvmmsg` (attached
/// to all four), and on kernels without `sock_send_length` the exits of write,
/// writev, pwritev, pwritev2, sendto, sendmsg, read, readv, recvfrom and recvmsg.
#[tracepoint]
pub fn sys_exit_sockio(ctx: TracePointContext) -> u32 {
    let ret = syscalls::ret(&ctx);
    if ret < 0
        && ret > -(ERESTARTSYS as i64)
        && let Some(syscall) = syscalls::sockio(syscalls::nr(&ctx))
    {
        let _ = exit(-ret as i32, syscall);
    }
    0
}

/// A send- or receive-family syscall failed with `errno`, seen at its exit.
#[inline(always)]
fn exit(errno: i32, syscall: Syscall) -> Option<()> {
    if errno == EAGAIN || errno == EINTR {
        return None;
    }
    let current = Current::get();
    if !maps::selected(current.tgid()) {
        return None;
    }
    let args = SyscallArgs::of(current)?;
    let fd = fd(&args, syscall);
    let what = current.fd(fd);
    if !several(syscall) {
        // One operation (the fallback for `sock_length`): sockets only; a pipe's EPIPE
        // is reported with its SIGPIPE (`pipe_epipe`).
        if !matches!(what, Fd::Socket(_)) {
            return None;
        }
    } else if matches!(what, Fd::Other) && errno != EPIPE {
        // On a file or pipe, only EPIPE is netwatch's business (SIGPIPE is the same
        // story on a pipe).
        return None;
    }
    report(current, errno, fd, syscall, &what)
}

/// The current task raised SIGPIPE on itself: if it is writing to a pipe (not a
/// socket: sockets are reported above), report that write's EPIPE.
#[inline(always)]
pub fn pipe_epipe(current: Current) -> Option<()> {
    let args = SyscallArgs::of(current)?;
    // sendfile64 and splice report pipes at their exits.
    let syscall = syscalls::sockio(args.nr()).filter(|s| s.is_send() && !several(*s))?;
    let fd = fd(&args, syscall);
    // Without BTF a socket cannot be told from a pipe: leave it to the socket path.
    let what = current.fd(fd);
    if !matches!(what, Fd::Other) {
        return None;
    }
    report(current, EPIPE, fd, syscall, &what)
}

/// Count and queue the failure of `syscall` on `fd` (what the fd walk found there).
#[inline(always)]
fn report(current: Current, errno: i32, fd: i32, syscall: Syscall, what: &Fd) -> Option<()> {
    if let Fd::Socket(s) = *what {
        set_owner(s.sk, current);
    }
    let mut slot = emit::reserve_failure::<SockIoEvent>(
        EventKind::SockIo,
        current.tgid(),
        errno,
        Family::of(syscall),
    )?;
    let ev = slot.zeroed();
    ev.header = emit::header(EventKind::SockIo, current);
    ev.errno = errno;
    ev.fd = fd;
    ev.syscall = syscall as u32;
    kernel::fill_fd(what, &mut ev.sock);
    let (family, local, remote) = (ev.sock.family, ev.sock.local, ev.sock.remote);
    slot.submit_sock(family, &local, &remote);
    Some(())
}

/// The fd written or read: splice(fd_in, off_in, fd_out, ...) writes `fd_out`;
/// every other call here takes its fd first.
#[inline(always)]
fn fd(args: &SyscallArgs, syscall: Syscall) -> i32 {
    (if matches!(syscall, Syscall::Splice) {
        args.arg(2)
    } else {
        args.arg(0)
    }) as i32
}
