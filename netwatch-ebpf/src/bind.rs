//! `bind(2)`: every failure, and successes (the daemon needs them to know a failed
//! bind was recovered).

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use netwatch_common::{EventKind, Family, bind::BindEvent};

use crate::{
    emit,
    kernel::{Current, Fd},
    maps::{self, set_owner},
    regs::SyscallArgs,
    sockaddr, syscalls,
};

#[tracepoint(category = "syscalls", name = "sys_exit_bind")]
pub fn sys_exit_bind(ctx: TracePointContext) -> u32 {
    sockaddr::stay_on_kernel_stack(&ctx);
    let ret = syscalls::ret(&ctx);
    let _ = exit(ret, Current::get());
    0
}

/// bind(2) returned `ret`.
#[inline(always)]
fn exit(ret: i64, current: Current) -> Option<()> {
    if !maps::selected(current.tgid()) {
        return None;
    }
    let args = SyscallArgs::of(current)?;
    // bind(int fd, const struct sockaddr *addr, socklen_t addrlen)
    let fd = args.arg(0) as i32;
    let mut sock_type = 0;
    if let Fd::Socket(s) = current.fd_after(fd, ret) {
        if ret == 0 {
            set_owner(s.sk, current);
        }
        sock_type = s.sock_type;
    }
    let mut slot = emit::reserve_failure::<BindEvent>(
        EventKind::Bind,
        current.tgid(),
        -ret as i32,
        Family::Bind,
    )?;
    let ev = slot.zeroed();
    ev.header = emit::header(EventKind::Bind, current);
    ev.errno = -ret as i32;
    ev.fd = fd;
    ev.sock_type = sock_type;
    sockaddr::read_user(args.arg(1), args.arg(2), &mut ev.addr);
    let (family, addr) = (ev.addr.family, ev.addr);
    slot.submit_sock(family, &addr, &addr);
    Some(())
}
