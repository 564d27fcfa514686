//! Successful `listen(2)` (queued: the daemon learns a bind was recovered),
//! `accept(2)`/`accept4(2)` (successes only record the new socket's owner), and
//! `accept`, `accept4` and `socket(2)` failing for want of file descriptors (EMFILE,
//! ENFILE: the server that stops accepting while its queue fills).

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use netwatch_common::{
    EventKind, Syscall,
    errno::{EMFILE, ENFILE},
    listen::ListenEvent,
};

use crate::{
    emit,
    kernel::{self, Current, Fd},
    maps::{self, set_owner},
    regs::SyscallArgs,
    syscalls,
};

#[tracepoint(category = "syscalls", name = "sys_exit_listen")]
pub fn sys_exit_listen(ctx: TracePointContext) -> u32 {
    let ret = syscalls::ret(&ctx);
    if ret == 0 {
        let _ = exit(Current::get());
    }
    0
}

/// `syscalls:sys_exit_accept` and `_accept4` (attached to both).
#[tracepoint]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    let ret = syscalls::ret(&ctx);
    if ret >= 0 {
        accepted(ret as i32, Current::get());
    } else {
        let syscall = if syscalls::nr(&ctx) == syscalls::ACCEPT4 {
            Syscall::Accept4
        } else {
            Syscall::Accept
        };
        let _ = out_of_fds(syscall, (-ret) as i32, Current::get());
    }
    0
}

/// `syscalls:sys_exit_socket`: failures for want of file descriptors only.
#[tracepoint(category = "syscalls", name = "sys_exit_socket")]
pub fn sys_exit_socket(ctx: TracePointContext) -> u32 {
    let ret = syscalls::ret(&ctx);
    if ret < 0 {
        let _ = out_of_fds(Syscall::Socket, (-ret) as i32, Current::get());
    }
    0
}

/// accept(2), accept4(2) or socket(2) failed with `errno`: queued when it is EMFILE
/// or ENFILE. Not counted per process when lost (only in `LOST`).
#[inline(always)]
fn out_of_fds(syscall: Syscall, errno: i32, current: Current) -> Option<()> {
    if (errno != EMFILE && errno != ENFILE)
        || !maps::selected(current.tgid())
        || !maps::errno_selected(errno)
    {
        return None;
    }
    let mut sock = None;
    let mut fd = -1;
    if !matches!(syscall, Syscall::Socket) {
        // accept(int fd, ...): the listening socket.
        let args = SyscallArgs::of(current)?;
        fd = args.arg(0) as i32;
        sock = Some(current.socket_fd(fd));
    }
    let mut slot = emit::reserve::<ListenEvent>(EventKind::Listen)?;
    let ev = slot.zeroed();
    ev.header = emit::header(EventKind::Listen, current);
    ev.fd = fd;
    ev.syscall = syscall as u32;
    ev.errno = errno;
    if let Some(what) = sock {
        kernel::fill_fd(&what, &mut ev.sock);
    }
    slot.submit();
    Some(())
}

/// listen(2) succeeded.
#[inline(always)]
fn exit(current: Current) -> Option<()> {
    if !maps::selected(current.tgid()) {
        return None;
    }
    let args = SyscallArgs::of(current)?;
    // listen(int fd, int backlog)
    let fd = args.arg(0) as i32;
    let what = current.socket_fd(fd);
    if let Fd::Socket(s) = what {
        set_owner(s.sk, current);
    }
    let mut slot = emit::reserve::<ListenEvent>(EventKind::Listen)?;
    let ev = slot.zeroed();
    ev.header = emit::header(EventKind::Listen, current);
    ev.fd = fd;
    ev.syscall = Syscall::Listen as u32;
    kernel::fill_fd(&what, &mut ev.sock);
    let (family, local, remote) = (ev.sock.family, ev.sock.local, ev.sock.remote);
    slot.submit_sock(family, &local, &remote);
    Some(())
}

/// accept(2)/accept4(2) returned `fd`, the accepted connection's. Remember who owns
/// it.
#[inline(always)]
fn accepted(fd: i32, current: Current) {
    if !maps::selected(current.tgid()) {
        return;
    }
    if let Fd::Socket(s) = current.socket_fd(fd) {
        set_owner(s.sk, current);
    }
}
