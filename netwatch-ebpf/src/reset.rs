//! TCP resets received (`tcp:tcp_receive_reset`) and sent (`tcp:tcp_send_reset`).
//!
//! Both fire in softirq context (or in whatever task processes the packet), so the
//! current pid says nothing about the socket: the event names the socket's owner as
//! recorded from process context (SOCK_OWNER), or nobody.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use netwatch_common::{
    ABSENT, AF_INET, AF_INET6, EventKind, SR_TUPLE_LEN, SockAddr, SockInfo,
    reset::{RESET_RECEIVED, RESET_SENT, ResetEvent},
};

use crate::{
    emit, kernel,
    maps::{self, TP_LAYOUT, owner},
    tp::field,
};

#[tracepoint(category = "tcp", name = "tcp_receive_reset")]
pub fn tcp_receive_reset(ctx: TracePointContext) -> u32 {
    try_reset(&ctx, RESET_RECEIVED);
    0
}

#[tracepoint(category = "tcp", name = "tcp_send_reset")]
pub fn tcp_send_reset(ctx: TracePointContext) -> u32 {
    try_reset(&ctx, RESET_SENT);
    0
}

/// Read a field of the tracepoint record at a load-time offset.
/// A `struct sockaddr_in`/`sockaddr_in6` as tcp_send_reset stores it (28 bytes).
#[inline(always)]
fn sockaddr(raw: &[u8; 28], out: &mut SockAddr) {
    out.family = u16::from_ne_bytes([raw[0], raw[1]]);
    out.port = u16::from_be_bytes([raw[2], raw[3]]);
    match out.family {
        AF_INET => out.addr[..4].copy_from_slice(&raw[4..8]),
        AF_INET6 => out.addr.copy_from_slice(&raw[8..24]),
        _ => out.port = 0,
    }
}

/// The older `tcp_send_reset` record's `sport, dport, family, saddr[4], daddr[4],
/// saddr_v6[16], daddr_v6[16]` (ports in host order), as local and remote ends.
#[inline(always)]
fn tuple(raw: &[u8; SR_TUPLE_LEN], local: &mut SockAddr, remote: &mut SockAddr) {
    let family = u16::from_ne_bytes([raw[4], raw[5]]);
    if family != AF_INET && family != AF_INET6 {
        return;
    }
    local.family = family;
    remote.family = family;
    local.port = u16::from_ne_bytes([raw[0], raw[1]]);
    remote.port = u16::from_ne_bytes([raw[2], raw[3]]);
    if family == AF_INET {
        local.addr[..4].copy_from_slice(&raw[6..10]);
        remote.addr[..4].copy_from_slice(&raw[10..14]);
    } else {
        local.addr.copy_from_slice(&raw[14..30]);
        remote.addr.copy_from_slice(&raw[30..46]);
    }
}

#[inline(always)]
fn try_reset(ctx: &TracePointContext, direction: u32) -> Option<()> {
    let l = TP_LAYOUT.load();
    let skoff = if direction == RESET_RECEIVED {
        l.rr_skaddr
    } else {
        l.sr_skaddr
    };
    let sk: u64 = field(ctx, skoff).unwrap_or(0);
    let owner = owner(sk);
    let (tgid, tid, comm, cgroup) =
        owner.map_or((0, 0, [0; 16], 0), |o| (o.tgid, o.tid, o.comm, o.cgroup_id));
    if maps::filtering() && (tgid == 0 || !maps::watched(tgid)) {
        return None;
    }
    let mut slot = emit::reserve::<ResetEvent>(EventKind::Reset)?;
    let ev = slot.zeroed();
    ev.header = emit::header_for(EventKind::Reset, tgid, tid, comm, cgroup);
    ev.sk = sk;
    ev.direction = direction;
    ev.owner_known = u32::from(owner.is_some());
    if direction == RESET_RECEIVED {
        let mut info = SockInfo::default();
        kernel::fill_sock(sk, &mut info);
        ev.local = info.local;
        ev.remote = info.remote;
        ev.state = i32::from(info.state);
        ev.reason = ABSENT;
    } else {
        // The record holds the RST's own addresses: saddr is this host's end.
        if l.sr_saddr != ABSENT {
            let raw: [u8; 28] = field(ctx, l.sr_saddr).unwrap_or([0; 28]);
            sockaddr(&raw, &mut ev.local);
            let raw: [u8; 28] = field(ctx, l.sr_daddr).unwrap_or([0; 28]);
            sockaddr(&raw, &mut ev.remote);
        } else if let Some(raw) = field::<[u8; SR_TUPLE_LEN]>(ctx, l.sr_tuple) {
            tuple(&raw, &mut ev.local, &mut ev.remote);
        }
        ev.state = field(ctx, l.sr_state).unwrap_or(-1);
        // Kernels before 6.10 give no reason.
        ev.reason = field(ctx, l.sr_reason).unwrap_or(ABSENT);
    }
    let (local, remote) = (ev.local, ev.remote);
    slot.submit_sock(local.family, &local, &remote);
    Some(())
}
