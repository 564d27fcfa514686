//! `connect(2)`: failures of the call, and failures of
//! non-blocking connects that arrive later on the socket (`inet_sk_error_report`).

use aya_ebpf::{
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use netwatch_common::{
    AF_INET, AF_INET6, EventKind, FEATURE_SK_ERR, Family, Owner,
    connect::{CONNECT_ERROR_REPORT, CONNECT_SYSCALL, ConnectEvent},
    errno::{
        EAGAIN, EALREADY, ECONNREFUSED, EHOSTDOWN, EHOSTUNREACH, EINPROGRESS, EINTR, ENETDOWN,
        ENETUNREACH, ERESTARTSYS, ETIMEDOUT,
    },
};

use crate::{
    emit,
    kernel::{self, Current, Fd},
    maps::{self, CONFIG, SOCK_OWNER},
    regs::SyscallArgs,
    sockaddr, syscalls,
};

const IPPROTO_TCP: u16 = 6;

#[tracepoint(category = "syscalls", name = "sys_exit_connect")]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    sockaddr::stay_on_kernel_stack(&ctx);
    let ret = syscalls::ret(&ctx);
    let _ = exit(ret, Current::get());
    0
}

/// connect(2) returned `ret`.
#[inline(always)]
fn exit(ret: i64, current: Current) -> Option<()> {
    if !maps::selected(current.tgid()) {
        return None;
    }
    let args = SyscallArgs::of(current)?;
    // connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
    let fd = args.arg(0) as i32;
    // connect(2) returns 0 or -errno.
    let neg = (-ret) as i32;
    let what = current.fd_after(fd, ret);
    let sk = match what {
        Fd::Socket(s) => s.sk,
        _ => 0,
    };
    // Addresses and ports only: a unix-domain connect failing with ENOENT is a
    // name-service lookup (nscd, systemd userdb) on every host, not a network error.
    // Only a connection-oriented inet socket (or vsock, whose entry is never used)
    // returns EINPROGRESS, the result of every non-blocking connect: no read then.
    let family = match what {
        Fd::Socket(_) if neg == EINPROGRESS => AF_INET,
        Fd::Socket(s) => kernel::family(s.sk),
        _ => sockaddr::user_family(args.arg(1), args.arg(2)),
    };
    if family != AF_INET && family != AF_INET6 {
        return None;
    }
    // Every connect attempt names the socket's owner, for resets and later errors,
    // and takes the error reported on the socket before connect(2) returned, if any:
    // on loopback the RST to a SYN is processed while connect still holds the socket
    // lock, so the error report comes first and EINPROGRESS second.
    let entry = maps::sock_entry(sk);
    // SAFETY: the field is copied out at once.
    let pending = entry.map_or(0, |e| unsafe { (*e).pending_err });
    let connecting = match neg {
        // The outcome comes later, as an error report on the socket (EINTR, or
        // ERESTARTSYS before the kernel turns it into EINTR or restarts the call: a
        // blocking connect interrupted goes on in the background).
        EINPROGRESS | EINTR | ERESTARTSYS if pending == 0 => 1,
        // Still in progress: as it was.
        // SAFETY: as above.
        EALREADY | EAGAIN => entry.map_or(0, |e| unsafe { (*e).connecting }),
        _ => 0,
    };
    maps::set_connect_owner(sk, entry, current, connecting);
    let (errno, origin) = match (neg, pending) {
        (EINPROGRESS | EINTR | ERESTARTSYS, err) if err != 0 => (err, CONNECT_ERROR_REPORT),
        // Not failures: in progress, or interrupted.
        (EINPROGRESS | EALREADY | EAGAIN | EINTR | ERESTARTSYS, _) => return None,
        (0, _) if CONFIG.load().verbose == 0 => return None,
        (e, _) => (e, CONNECT_SYSCALL),
    };
    let mut slot = emit::reserve_failure::<ConnectEvent>(
        EventKind::Connect,
        current.tgid(),
        errno,
        Family::Connect,
    )?;
    let ev = slot.zeroed();
    ev.header = emit::header(EventKind::Connect, current);
    ev.errno = errno;
    ev.fd = fd;
    ev.origin = origin;
    kernel::fill_fd(&what, &mut ev.sock);
    sockaddr::read_user(args.arg(1), args.arg(2), &mut ev.addr);
    let (local, addr) = (ev.sock.local, ev.addr);
    slot.submit_sock(addr.family, &local, &addr);
    Some(())
}

/// `inet_sk_error_report(const struct sock *sk)`: an error was set on an inet socket
/// (ECONNREFUSED for a refused non-blocking connect, ETIMEDOUT, EHOSTUNREACH...).
/// Runs in softirq context: the process is the socket's owner, if one was seen. A raw
/// tracepoint: the pointer argument is all it needs, read at BTF-derived offsets.
#[raw_tracepoint(tracepoint = "inet_sk_error_report")]
pub fn inet_sk_error_report(ctx: RawTracePointContext) -> i32 {
    try_inet_sk_error_report(&ctx);
    0
}

#[inline(always)]
fn try_inet_sk_error_report(ctx: &RawTracePointContext) -> Option<()> {
    let sk: u64 = ctx.arg(0);
    let k = kernel::offsets().filter(|k| k.has(FEATURE_SK_ERR))?;
    let err: i32 = kernel::read(sk, k.sk_err())?;
    // Errors a connect in progress can end with (net/ipv4/tcp_input.c tcp_reset,
    // tcp_timer.c, tcp_ipv4.c tcp_v4_err). Resets and EPIPE on an established
    // connection are the reset and send sources' to report.
    if !matches!(
        err,
        ECONNREFUSED | ETIMEDOUT | EHOSTUNREACH | ENETUNREACH | EHOSTDOWN | ENETDOWN
    ) {
        return None;
    }
    // TCP only: no other inet protocol's connect is left in progress.
    if kernel::read::<u16>(sk, k.sk_protocol())? != IPPROTO_TCP {
        return None;
    }
    // A connection that was established fails on its own, later (a timeout, or an
    // ICMP error with IP_RECVERR): the process learns it from its next call on the
    // socket, which the socket I/O source reports. An established connection has had
    // a round-trip sample; a SYN has not (tcp_disconnect clears it for a reconnect).
    if kernel::read::<u32>(sk, k.tcp_srtt_us()).is_some_and(|v| v != 0) {
        return None;
    }
    let Some(entry) = maps::sock_entry(sk) else {
        // No process has used the socket yet: its connect(2) has not returned. Leave
        // the error for sys_exit_connect.
        let pending = Owner {
            pending_err: err,
            ..Owner::default()
        };
        // BPF_NOEXIST: a connect that has returned meanwhile is not overwritten.
        let _ = SOCK_OWNER.insert(&sk, &pending, 1);
        return None;
    };
    // SAFETY: a value of the map, read and written at once (see `maps::put_owner`).
    let owner = unsafe {
        if (*entry).connecting == 0 {
            // connect(2) has not returned yet (or the socket was never connecting):
            // leave the error for sys_exit_connect.
            (*entry).pending_err = err;
            return None;
        }
        (*entry).connecting = 0;
        *entry
    };
    let (tgid, tid, comm, cgroup) = (owner.tgid, owner.tid, owner.comm, owner.cgroup_id);
    if maps::filtering() && (tgid == 0 || !maps::watched(tgid)) {
        return None;
    }
    let mut slot =
        emit::reserve_failure::<ConnectEvent>(EventKind::Connect, tgid, err, Family::Connect)?;
    let ev = slot.zeroed();
    ev.header = emit::header_for(EventKind::Connect, tgid, tid, comm, cgroup);
    ev.errno = err;
    ev.fd = -1;
    ev.origin = CONNECT_ERROR_REPORT;
    kernel::fill_sock(sk, &mut ev.sock);
    ev.addr = ev.sock.remote;
    let (family, local, remote) = (ev.sock.family, ev.sock.local, ev.sock.remote);
    slot.submit_sock(family, &local, &remote);
    Some(())
}
