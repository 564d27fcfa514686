//! Process lifecycle: thread-group exit with its status, fork (which also extends
//! the pid filter to children), and exec.

use aya_ebpf::{
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use netwatch_common::{
    EventKind,
    process::{EXIT_CODE_UNKNOWN, ExecEvent, ExitEvent, ForkEvent},
};

use crate::{
    emit,
    kernel::{self, Current},
    maps::{self, CONFIG, LOST_EXITS, TP_LAYOUT, WATCHED},
    tp::field,
};

#[tracepoint(category = "sched", name = "sched_process_exit")]
pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
    try_exit(&ctx);
    0
}

#[inline(always)]
fn try_exit(ctx: &TracePointContext) -> Option<()> {
    let current = Current::get();
    let tgid = current.tgid();
    // One event per thread group: when its last thread exits (group_dead), or, on
    // kernels whose record lacks that field, when the leader exits.
    let group_dead = match field::<u8>(ctx, TP_LAYOUT.load().pe_group_dead) {
        Some(dead) => dead != 0,
        None => tgid == current.tid(),
    };
    if !group_dead || !maps::selected(tgid) {
        return None;
    }
    let exit_code = current.exit_code().unwrap_or(EXIT_CODE_UNKNOWN);
    if CONFIG.load().filter_pids != 0 {
        // The pid may be reused by an unrelated process.
        let _ = WATCHED.remove(&tgid);
    }
    let ev = ExitEvent {
        header: emit::header(EventKind::Exit, current),
        exit_code,
        _pad: 0,
    };
    match emit::reserve::<ExitEvent>(EventKind::Exit) {
        Some(mut slot) => {
            slot.write(ev);
            slot.submit();
        }
        // Kept for the daemon: an exit status decides `--check`.
        None => {
            let _ = LOST_EXITS.insert(&tgid, &ev, 0);
        }
    }
    Some(())
}

/// `sched_process_fork(struct task_struct *parent, struct task_struct *child)`, in
/// the parent's context, before the child first runs: a child of a watched process
/// is watched before it can make a single syscall.
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    try_fork(&ctx);
    0
}

#[inline(always)]
fn try_fork(ctx: &RawTracePointContext) -> Option<()> {
    let k = kernel::offsets()?;
    let child: u64 = ctx.arg(1);
    let child_tgid: u32 = kernel::read(child, k.task_tgid())?;
    let child_tid: u32 = kernel::read(child, k.task_pid())?;
    if child_tgid != child_tid {
        return None; // a new thread, not a new process
    }
    let current = Current::get();
    let parent = current.tgid();
    let config = CONFIG.load();
    if config.filter_pids != 0 {
        let spawned = config.spawner_tgid != 0 && parent == config.spawner_tgid;
        if !spawned && !maps::watched(parent) {
            return None;
        }
        let _ = WATCHED.insert(&child_tgid, &1, 0);
    }
    if !maps::in_cgroup() {
        return None;
    }
    let mut slot = emit::reserve::<ForkEvent>(EventKind::Fork)?;
    slot.write(ForkEvent {
        header: emit::header(EventKind::Fork, current),
        child_tgid,
        child_tid,
    });
    slot.submit();
    Some(())
}

#[tracepoint(category = "sched", name = "sched_process_exec")]
pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
    try_exec(&ctx);
    0
}

#[inline(always)]
fn try_exec(ctx: &TracePointContext) -> Option<()> {
    let current = Current::get();
    if !maps::selected(current.tgid()) {
        return None;
    }
    let old_tid = field::<i32>(ctx, TP_LAYOUT.load().ex_old_pid).unwrap_or(0) as u32;
    let mut slot = emit::reserve::<ExecEvent>(EventKind::Exec)?;
    slot.write(ExecEvent {
        header: emit::header(EventKind::Exec, current),
        old_tid,
        _pad: 0,
    });
    slot.submit();
    Some(())
}
