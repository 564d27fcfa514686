//! SIGPIPE generated for a process (`signal:signal_generate`), with what the target
//! had arranged for it: ignore, a handler, or the default (death); and the signals
//! that ask a process to terminate.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use netwatch_common::{
    EventKind,
    signal::{HANDLER_UNKNOWN, SIGPIPE, SignalEvent, is_traced},
};

use crate::{
    emit,
    kernel::{self, Current},
    maps::{self, TP_LAYOUT},
    sockio,
    tp::field,
};

#[tracepoint(category = "signal", name = "signal_generate")]
pub fn signal_generate(ctx: TracePointContext) -> u32 {
    try_signal_generate(&ctx);
    0
}

#[inline(always)]
fn try_signal_generate(ctx: &TracePointContext) -> Option<()> {
    let l = TP_LAYOUT.load();
    let sig: i32 = field(ctx, l.sg_sig)?;
    if !is_traced(sig) {
        return None;
    }
    let target: i32 = field(ctx, l.sg_pid)?;
    let current = Current::get();
    // The kernel raises SIGPIPE on the writing task itself (net/core/stream.c,
    // fs/pipe.c): then the target is current and its process is known. A SIGPIPE
    // sent by another process is attributed to the target thread's id.
    let to_self = target as u32 == current.tid();
    let tgid = if to_self {
        current.tgid()
    } else {
        target as u32
    };
    // Another process's cgroup is not known here: with --cgroup, only signals a task
    // raises on itself (every kernel-raised SIGPIPE) can be placed.
    let placed = if to_self {
        maps::in_cgroup()
    } else {
        maps::CONFIG.load().cgroup_id == 0
    };
    if !maps::watched(tgid) || !placed {
        return None;
    }
    let cgroup = if to_self { current.cgroup_id() } else { 0 };
    let handler = if to_self {
        kernel::current_sig_handler(sig).unwrap_or(HANDLER_UNKNOWN)
    } else {
        HANDLER_UNKNOWN
    };
    let target_comm: [u8; 16] = field(ctx, l.sg_comm).unwrap_or([0; 16]);
    if let Some(mut slot) = emit::reserve::<SignalEvent>(EventKind::Signal) {
        let ev = slot.zeroed();
        ev.header = emit::header_for(EventKind::Signal, tgid, target as u32, target_comm, cgroup);
        ev.handler = handler;
        ev.target_tid = target;
        ev.sig = sig;
        ev.code = field(ctx, l.sg_code).unwrap_or(0);
        ev.result = field(ctx, l.sg_result).unwrap_or(-1);
        ev.group = field::<i32>(ctx, l.sg_group).unwrap_or(0) as u32;
        ev.target_comm = target_comm;
        slot.submit();
    }
    if sig == SIGPIPE && to_self {
        sockio::pipe_epipe(current);
    }
    Some(())
}
