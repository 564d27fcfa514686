//! Process lifecycle: thread-group exit with its status (`sched:sched_process_exit`),
//! fork (`sched_process_fork`, BTF), and exec (`sched:sched_process_exec`).

use crate::Header;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitEvent {
    pub header: Header,
    /// `task_struct->exit_code`, a wait status: `code << 8` for exit(code), the
    /// signal number (| 0x80 for a core dump) for a death by signal.
    /// [`EXIT_CODE_UNKNOWN`] when BTF was unavailable.
    pub exit_code: i32,
    pub _pad: u32,
}
assert_packed!(ExitEvent, 56, {
    header: Header,
    exit_code: i32,
    _pad: u32,
});

pub const EXIT_CODE_UNKNOWN: i32 = i32::MIN;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkEvent {
    /// The parent (current task).
    pub header: Header,
    pub child_tgid: u32,
    pub child_tid: u32,
}
assert_packed!(ForkEvent, 56, {
    header: Header,
    child_tgid: u32,
    child_tid: u32,
});

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecEvent {
    /// After exec: the new comm.
    pub header: Header,
    /// The pid before exec (differs when a non-leader thread called exec).
    pub old_tid: u32,
    pub _pad: u32,
}
assert_packed!(ExecEvent, 56, {
    header: Header,
    old_tid: u32,
    _pad: u32,
});
