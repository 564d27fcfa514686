//! Process lifecycle: thread-group exit with its status (`sched:sched_process_exit`),
//! fork (`sched_process_fork`, BTF), and exec (`sched:sched_process_exec`).

use crate::Header;

wire! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ExitEvent: 56 {
        pub header: Header,
        /// `task_struct->exit_code`, a wait status: `code << 8` for exit(code), the
        /// signal number (| 0x80 for a core dump) for a death by signal.
        /// [`EXIT_CODE_UNKNOWN`] when BTF was unavailable.
        pub exit_code: i32,
        pub _pad: u32,
    }
}

pub const EXIT_CODE_UNKNOWN: i32 = i32::MIN;

wire! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ForkEvent: 56 {
        /// The parent (current task).
        pub header: Header,
        pub child_tgid: u32,
        pub child_tid: u32,
    }
}

wire! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ExecEvent: 56 {
        /// After exec: the new comm.
        pub header: Header,
        /// The pid before exec (differs when a non-leader thread called exec).
        pub old_tid: u32,
        pub _pad: u32,
    }
}
