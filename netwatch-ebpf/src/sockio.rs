//! Errors of the send family (write, writev, pwritev, pwritev2, sendto, sendmsg,
//! sendmmsg, sendfile64, splice) and the receive family (read, readv, recvfrom,
//! recvmsg, recvmmsg).

use aya_ebpf::helpers::bpf_get_current_pid_tgid;
use netwatch_common::{
    EventKind, FAMILY_RECV, FAMILY_SEND, FAMILY_SENDFILE, Syscall, sockio::SockIoEvent,
};

use crate::{
    emit, kernel,
    maps::{self, set_owner},
    regs::SyscallArgs,
};

const EINTR: i64 = 4;
const EAGAIN: i64 = 11;
const EPIPE: i32 = 32;
/// ERESTARTSYS and friends (include/linux/errno.h) never reach user space.
const ERESTART_FIRST: i64 = 512;

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

/// A send- or receive-family syscall returned `ret` (see `syscalls.rs`).
#[inline(always)]
pub fn exit(ret: i64, args: &SyscallArgs, syscall: Syscall) -> Option<()> {
    // Success, "try again", and interrupted calls are not failures.
    if ret >= 0 || ret == -EAGAIN || ret == -EINTR || ret <= -ERESTART_FIRST {
        return None;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    if !maps::selected((pid_tgid >> 32) as u32) {
        return None;
    }
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
