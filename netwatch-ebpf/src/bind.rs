//! `bind(2)`: every failure, from `syscalls:sys_exit_bind`.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use netwatch_common::{EventKind, bind::BindEvent};

use crate::{
    emit, maps,
    regs::{self, SyscallArgs},
    sockaddr,
};

#[tracepoint(category = "syscalls", name = "sys_exit_bind")]
pub fn sys_exit_bind(ctx: TracePointContext) -> u32 {
    try_sys_exit_bind(&ctx);
    0
}

#[inline(always)]
fn try_sys_exit_bind(ctx: &TracePointContext) -> Option<()> {
    let ret = regs::sys_exit_ret(ctx);
    if ret >= 0 {
        return None;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    if !maps::watched((pid_tgid >> 32) as u32) {
        return None;
    }
    let args = SyscallArgs::current()?;
    // bind(int fd, const struct sockaddr *addr, socklen_t addrlen)
    let addr = sockaddr::read_user(args.arg(1), args.arg(2));
    let mut slot = emit::reserve::<BindEvent>(EventKind::Bind)?;
    slot.write(BindEvent {
        header: emit::header(EventKind::Bind, pid_tgid),
        errno: -ret as i32,
        fd: args.arg(0) as i32,
        addr,
        _pad: [0; 4],
    });
    slot.submit();
    Some(())
}
