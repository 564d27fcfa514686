//! Every kernel program netwatch attaches: one [`Program`] record each, with the
//! source it feeds, its hook and what it needs of the running kernel.

use netwatch_common::{
    ABSENT, FEATURE_SK_ERR, KernelOffsets, SYS_EXIT_NR_OFFSET, SYS_EXIT_RET_OFFSET, TpLayout,
};

use crate::tracefs::Tracefs;

/// The event sources: a module of that name in every crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Bind,
    Listen,
    Connect,
    SockIo,
    Reset,
    Signal,
    Process,
}

impl Source {
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Listen => "listen",
            Self::Connect => "connect",
            Self::SockIo => "sockio",
            Self::Reset => "reset",
            Self::Signal => "signal",
            Self::Process => "process",
        }
    }
}

/// Where a program attaches.
#[derive(Debug, Clone, Copy)]
pub enum Hook {
    /// A classic tracepoint (tracefs): category and name.
    Tracepoint(&'static str, &'static str),
    /// A raw tracepoint, and the tracefs category its event is listed under: it
    /// exists on a kernel when that event does.
    Raw {
        name: &'static str,
        category: &'static str,
    },
}

impl Hook {
    pub fn exists(self, tracefs: &Tracefs) -> bool {
        match self {
            Self::Tracepoint(category, name) | Self::Raw { name, category } => {
                tracefs.has(category, name)
            }
        }
    }

    pub fn describe(self) -> String {
        match self {
            Self::Tracepoint(c, n) => format!("tracepoint {c}:{n}"),
            Self::Raw { name, .. } => format!("raw tracepoint {name}"),
        }
    }
}

/// What a program reads beyond its hook's arguments.
#[derive(Debug, Clone, Copy)]
pub enum Needs {
    Nothing,
    /// Kernel struct offsets from BTF, with these `FEATURE_*` bits; without them the
    /// program does nothing (the missing BTF is said once, elsewhere).
    Offsets(u32),
    /// Fields of its tracepoint's record, found in [`TpLayout`].
    Layout(fn(&TpLayout) -> bool),
}

/// One attachment of a kernel program: its function name in netwatch-ebpf, the event
/// source it feeds, its hook and what it needs. A program with several hooks is
/// listed once per hook, loaded (verified) once.
#[derive(Debug)]
pub struct Program {
    pub name: &'static str,
    pub source: Source,
    pub hook: Hook,
    pub needs: Needs,
}

/// Whether a program can run on this kernel.
#[derive(Debug, PartialEq, Eq)]
pub enum Usable {
    Yes,
    /// Its hook does not exist.
    Missing,
    /// Its record has a layout the program cannot read.
    UnknownLayout,
    /// It needs what BTF did not give: already said.
    Skip,
}

impl Program {
    const fn tracepoint(
        name: &'static str,
        source: Source,
        category: &'static str,
        tp: &'static str,
    ) -> Self {
        Self {
            name,
            source,
            hook: Hook::Tracepoint(category, tp),
            needs: Needs::Nothing,
        }
    }

    const fn raw(
        name: &'static str,
        source: Source,
        category: &'static str,
        raw: &'static str,
    ) -> Self {
        Self {
            name,
            source,
            hook: Hook::Raw {
                name: raw,
                category,
            },
            needs: Needs::Nothing,
        }
    }

    const fn needing(self, needs: Needs) -> Self {
        Self { needs, ..self }
    }

    pub fn usable(&self, tracefs: &Tracefs, layout: &TpLayout, offsets: &KernelOffsets) -> Usable {
        if let Needs::Offsets(features) = self.needs
            && (offsets.valid == 0 || offsets.features & features != features)
        {
            return Usable::Skip;
        }
        if !self.hook.exists(tracefs) {
            return Usable::Missing;
        }
        let layout_ok = match (self.hook, self.needs) {
            (Hook::Tracepoint("syscalls", name), _) => sys_exit_layout_ok(tracefs, name),
            (_, Needs::Layout(has_fields)) => has_fields(layout),
            _ => true,
        };
        if layout_ok {
            Usable::Yes
        } else {
            Usable::UnknownLayout
        }
    }
}

/// Every program, and the sources it feeds.
pub const PROGRAMS: &[Program] = &[
    // The exits of the bind, listen, accept, connect and socket syscalls, one classic
    // tracepoint each: a program on the generic sys_exit would run at every syscall
    // of the host (netwatch-ebpf's syscalls.rs).
    Program::tracepoint("sys_exit_bind", Source::Bind, "syscalls", "sys_exit_bind"),
    Program::tracepoint(
        "sys_exit_listen",
        Source::Listen,
        "syscalls",
        "sys_exit_listen",
    ),
    Program::tracepoint(
        "sys_exit_accept",
        Source::Listen,
        "syscalls",
        "sys_exit_accept",
    ),
    Program::tracepoint(
        "sys_exit_accept",
        Source::Listen,
        "syscalls",
        "sys_exit_accept4",
    ),
    Program::tracepoint(
        "sys_exit_connect",
        Source::Connect,
        "syscalls",
        "sys_exit_connect",
    ),
    Program::tracepoint(
        "sys_exit_socket",
        Source::Listen,
        "syscalls",
        "sys_exit_socket",
    ),
    // Socket sends and receives, below the syscall: they run for socket I/O only
    // (Linux 6.3 and later; see SOCKIO_EXITS); the calls that make several socket
    // operations, at their exits (netwatch-ebpf's sockio.rs).
    Program::raw("sock_length", Source::SockIo, "sock", "sock_send_length"),
    Program::raw("sock_length", Source::SockIo, "sock", "sock_recv_length"),
    Program::tracepoint(
        "sys_exit_sockio",
        Source::SockIo,
        "syscalls",
        "sys_exit_sendfile64",
    ),
    Program::tracepoint(
        "sys_exit_sockio",
        Source::SockIo,
        "syscalls",
        "sys_exit_splice",
    ),
    Program::tracepoint(
        "sys_exit_sockio",
        Source::SockIo,
        "syscalls",
        "sys_exit_sendmmsg",
    ),
    Program::tracepoint(
        "sys_exit_sockio",
        Source::SockIo,
        "syscalls",
        "sys_exit_recvmmsg",
    ),
    Program::raw(
        "inet_sk_error_report",
        Source::Connect,
        "sock",
        "inet_sk_error_report",
    )
    .needing(Needs::Offsets(FEATURE_SK_ERR)),
    Program::tracepoint(
        "tcp_receive_reset",
        Source::Reset,
        "tcp",
        "tcp_receive_reset",
    )
    .needing(Needs::Layout(|l| l.rr_skaddr != ABSENT)),
    Program::tracepoint("tcp_send_reset", Source::Reset, "tcp", "tcp_send_reset").needing(
        Needs::Layout(|l| l.sr_skaddr != ABSENT && (l.sr_saddr != ABSENT || l.sr_tuple != ABSENT)),
    ),
    Program::tracepoint(
        "signal_generate",
        Source::Signal,
        "signal",
        "signal_generate",
    )
    .needing(Needs::Layout(|l| l.sg_sig != ABSENT && l.sg_pid != ABSENT)),
    Program::tracepoint(
        "sched_process_exit",
        Source::Process,
        "sched",
        "sched_process_exit",
    ),
    Program::raw(
        "sched_process_fork",
        Source::Process,
        "sched",
        "sched_process_fork",
    )
    .needing(Needs::Offsets(0)),
    Program::tracepoint(
        "sched_process_exec",
        Source::Process,
        "sched",
        "sched_process_exec",
    ),
];

/// Socket I/O on kernels without `sock_send_length` and `sock_recv_length` (before
/// Linux 6.3): the exits of the calls that make one socket operation, with the same
/// program as the calls that make several. It walks the fd table on failures only and
/// reports sockets only (a pipe's EPIPE comes with its SIGPIPE, `signal.rs`).
/// `NETWATCH_SOCKIO=exits` forces it on any kernel (to measure and test it).
pub const SOCKIO_EXITS: &[Program] = &[
    sockio_exit("sys_exit_write"),
    sockio_exit("sys_exit_writev"),
    sockio_exit("sys_exit_pwritev"),
    sockio_exit("sys_exit_pwritev2"),
    sockio_exit("sys_exit_sendto"),
    sockio_exit("sys_exit_sendmsg"),
    sockio_exit("sys_exit_read"),
    sockio_exit("sys_exit_readv"),
    sockio_exit("sys_exit_recvfrom"),
    sockio_exit("sys_exit_recvmsg"),
];

const fn sockio_exit(tracepoint: &'static str) -> Program {
    Program::tracepoint("sys_exit_sockio", Source::SockIo, "syscalls", tracepoint)
}

/// How socket sends and receives are traced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockIoPath {
    /// `sock_send_length` and `sock_recv_length`: socket I/O only.
    Raw,
    /// [`SOCKIO_EXITS`].
    SyscallExits,
}

impl SockIoPath {
    pub fn choose(tracefs: &Tracefs) -> Self {
        let forced = std::env::var_os("NETWATCH_SOCKIO").is_some_and(|v| v == "exits");
        if forced
            || PROGRAMS
                .iter()
                .any(|p| Self::replaced(p) && !p.hook.exists(tracefs))
        {
            Self::SyscallExits
        } else {
            Self::Raw
        }
    }

    /// The programs [`SOCKIO_EXITS`] stands in for: socket I/O's raw tracepoints.
    pub fn replaced(p: &Program) -> bool {
        p.source == Source::SockIo && matches!(p.hook, Hook::Raw { .. })
    }
}

/// Whether `syscalls:NAME` has the record layout the programs read directly
/// (`SYS_EXIT_NR_OFFSET`, `SYS_EXIT_RET_OFFSET`).
fn sys_exit_layout_ok(tracefs: &Tracefs, name: &str) -> bool {
    tracefs.format("syscalls", name).is_ok_and(|f| {
        f.field("__syscall_nr")
            .is_ok_and(|x| x.offset == SYS_EXIT_NR_OFFSET)
            && f.field("ret")
                .is_ok_and(|x| x.offset == SYS_EXIT_RET_OFFSET && x.size == 8)
    })
}
