//! `bind(2)`: every failure, and successes (the daemon needs them to know a failed
//! bind was recovered).

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use netwatch_common::{EventKind, FAMILY_BIND, bind::BindEvent};

use crate::{
    emit, kernel,
    maps::{self, set_owner},
    regs::SyscallArgs,
    sockaddr, syscalls,
};

#[tracepoint(category = "syscalls", name = "sys_exit_bind")]
pub fn sys_exit_bind(ctx: TracePointContext) -> u32 {
    let ret = syscalls::ret(&ctx);
    let _ = SyscallArgs::current().and_then(|args| exit(ret, &args));
    0
}

/// bind(2) returned `ret`.
#[inline(always)]
fn exit(ret: i64, args: &SyscallArgs) -> Option<()> {
    let pid_tgid = bpf_get_current_pid_tgid();
    if !maps::selected((pid_tgid >> 32) as u32) {
        return None;
    }
    // bind(int fd, const struct sockaddr *addr, socklen_t addrlen)
    let fd = args.arg(0) as i32;
    let comm = kernel::current_comm();
    let mut sock_type = 0;
    if let kernel::Fd::Socket(s) = kernel::lookup_after(fd, ret) {
        if ret == 0 {
            set_owner(s.sk, pid_tgid, comm);
        }
        sock_type = s.sock_type;
    }
    let tgid = (pid_tgid >> 32) as u32;
    let mut slot =
        emit::reserve_failure::<BindEvent>(EventKind::Bind, tgid, -ret as i32, FAMILY_BIND)?;
    let ev = slot.zeroed();
    ev.header = emit::header_with_comm(EventKind::Bind, pid_tgid, comm);
    ev.errno = -ret as i32;
    ev.fd = fd;
    ev.sock_type = sock_type;
    sockaddr::read_user(args.arg(1), args.arg(2), &mut ev.addr);
    slot.submit();
    Some(())
}
