//! Successful `listen(2)` (queued: the daemon learns a bind was recovered) and
//! `accept(2)`/`accept4(2)` (not queued: they only record the new socket's owner).

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use netwatch_common::{EventKind, Syscall, listen::ListenEvent};

use crate::{
    emit, kernel,
    maps::{self, set_owner},
    regs::SyscallArgs,
    syscalls,
};

#[tracepoint(category = "syscalls", name = "sys_exit_listen")]
pub fn sys_exit_listen(ctx: TracePointContext) -> u32 {
    let ret = syscalls::ret(&ctx);
    let _ = SyscallArgs::current().and_then(|args| exit(ret, &args));
    0
}

/// `syscalls:sys_exit_accept` and `_accept4` (attached to both).
#[tracepoint]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    let _ = accepted(syscalls::ret(&ctx));
    0
}

/// listen(2) returned `ret`.
#[inline(always)]
fn exit(ret: i64, args: &SyscallArgs) -> Option<()> {
    if ret != 0 {
        return None;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    if !maps::selected((pid_tgid >> 32) as u32) {
        return None;
    }
    // listen(int fd, int backlog)
    let fd = args.arg(0) as i32;
    let what = kernel::socket_fd(fd);
    let comm = kernel::current_comm();
    if let kernel::Fd::Socket(s) = what {
        set_owner(s.sk, pid_tgid, comm);
    }
    let mut slot = emit::reserve::<ListenEvent>(EventKind::Listen)?;
    let ev = slot.zeroed();
    ev.header = emit::header_with_comm(EventKind::Listen, pid_tgid, comm);
    ev.fd = fd;
    ev.syscall = Syscall::Listen as u32;
    kernel::fill_fd(&what, &mut ev.sock);
    slot.submit();
    Some(())
}

/// accept(2)/accept4(2) returned `ret`: the accepted connection's fd. Remember who
/// owns it.
#[inline(always)]
fn accepted(ret: i64) -> Option<()> {
    if ret < 0 {
        return None;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    if !maps::selected((pid_tgid >> 32) as u32) {
        return None;
    }
    if let kernel::Fd::Socket(s) = kernel::socket_fd(ret as i32) {
        set_owner(s.sk, pid_tgid, kernel::current_comm());
    }
    Some(())
}
