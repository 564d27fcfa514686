//! Loading the embedded kernel programs, configuring them, attaching them.
//!
//! Every failure names what failed (the capability, the tracepoint, the program, the
//! map): netwatch must never half-start and look healthy. What the running kernel
//! lacks (a tracepoint, BTF) switches off only what depends on it, with a warning.

use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapError},
    programs::{
        ProgramError, RawTracePoint, TracePoint, raw_trace_point::RawTracePointLink,
        trace_point::TracePointLink,
    },
};
use netwatch_common::{
    ABSENT, CONFIG_GLOBAL, Config, EVENTS_MAP, FEATURE_SK_ERR, KERNEL_OFFSETS_GLOBAL,
    KernelOffsets, SR_TUPLE_LEN, SYS_EXIT_NR_OFFSET, SYS_EXIT_RET_OFFSET, TP_LAYOUT_GLOBAL,
    TpLayout, WATCHED_MAP,
};

use crate::{
    caps::{self, MissingCapability},
    kernel_btf::KernelBtf,
    tracefs::{Format, Tracefs, TracefsError},
};

/// The kernel programs, built by build.rs and embedded: the binary needs nothing else.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/netwatch"));

/// Where a program attaches.
#[derive(Debug, Clone, Copy)]
pub enum Hook {
    /// A classic tracepoint (tracefs): category and name.
    Tracepoint(&'static str, &'static str),
    /// A raw tracepoint: the tracepoint's name.
    Raw(&'static str),
}

/// One attachment of a kernel program: its function name in netwatch-ebpf, the event
/// source it feeds (the module name in every crate) and its hook. A program with
/// several hooks is listed once per hook, loaded (verified) once.
#[derive(Debug)]
pub struct Program {
    pub name: &'static str,
    pub source: &'static str,
    pub hook: Hook,
}

/// Every program, and the sources it feeds.
pub const PROGRAMS: &[Program] = &[
    // The exits of five syscalls, one classic tracepoint each: a program on the
    // generic sys_exit would run at every syscall of the host (netwatch-ebpf's
    // syscalls.rs).
    Program {
        name: "sys_exit_bind",
        source: "bind",
        hook: Hook::Tracepoint("syscalls", "sys_exit_bind"),
    },
    Program {
        name: "sys_exit_listen",
        source: "listen",
        hook: Hook::Tracepoint("syscalls", "sys_exit_listen"),
    },
    Program {
        name: "sys_exit_accept",
        source: "listen",
        hook: Hook::Tracepoint("syscalls", "sys_exit_accept"),
    },
    Program {
        name: "sys_exit_accept",
        source: "listen",
        hook: Hook::Tracepoint("syscalls", "sys_exit_accept4"),
    },
    Program {
        name: "sys_exit_connect",
        source: "connect",
        hook: Hook::Tracepoint("syscalls", "sys_exit_connect"),
    },
    // Socket sends and receives, below the syscall: they run for socket I/O only;
    // the calls that make several socket operations, at their exits (netwatch-ebpf's
    // sockio.rs).
    Program {
        name: "sock_length",
        source: "sockio",
        hook: Hook::Raw("sock_send_length"),
    },
    Program {
        name: "sock_length",
        source: "sockio",
        hook: Hook::Raw("sock_recv_length"),
    },
    Program {
        name: "sys_exit_sockio",
        source: "sockio",
        hook: Hook::Tracepoint("syscalls", "sys_exit_sendfile64"),
    },
    Program {
        name: "sys_exit_sockio",
        source: "sockio",
        hook: Hook::Tracepoint("syscalls", "sys_exit_splice"),
    },
    Program {
        name: "sys_exit_sockio",
        source: "sockio",
        hook: Hook::Tracepoint("syscalls", "sys_exit_sendmmsg"),
    },
    Program {
        name: "sys_exit_sockio",
        source: "sockio",
        hook: Hook::Tracepoint("syscalls", "sys_exit_recvmmsg"),
    },
    Program {
        name: "inet_sk_error_report",
        source: "connect",
        hook: Hook::Raw("inet_sk_error_report"),
    },
    Program {
        name: "tcp_receive_reset",
        source: "reset",
        hook: Hook::Tracepoint("tcp", "tcp_receive_reset"),
    },
    Program {
        name: "tcp_send_reset",
        source: "reset",
        hook: Hook::Tracepoint("tcp", "tcp_send_reset"),
    },
    Program {
        name: "signal_generate",
        source: "signal",
        hook: Hook::Tracepoint("signal", "signal_generate"),
    },
    Program {
        name: "sched_process_exit",
        source: "process",
        hook: Hook::Tracepoint("sched", "sched_process_exit"),
    },
    Program {
        name: "sched_process_fork",
        source: "process",
        hook: Hook::Raw("sched_process_fork"),
    },
    Program {
        name: "sched_process_exec",
        source: "process",
        hook: Hook::Tracepoint("sched", "sched_process_exec"),
    },
];

/// Socket I/O on kernels without `sock_send_length` and `sock_recv_length` (before
/// Linux 6.3): the exits of the calls that make one socket operation, with the same
/// program as the calls that make several. It walks the fd table on failures only and
/// reports sockets only (a pipe's EPIPE comes with its SIGPIPE, `signal.rs`).
/// `NETWATCH_SOCKIO=exits` forces it on any kernel (to measure and test it).
const SOCKIO_EXITS: &[Program] = &[
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
    Program {
        name: "sys_exit_sockio",
        source: "sockio",
        hook: Hook::Tracepoint("syscalls", tracepoint),
    }
}

/// The raw tracepoints [`SOCKIO_EXITS`] stands in for.
const SOCKIO_RAW: &[&str] = &["sock_send_length", "sock_recv_length"];

/// How socket sends and receives are traced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockIoPath {
    /// `sock_send_length` and `sock_recv_length`: socket I/O only.
    Raw,
    /// [`SOCKIO_EXITS`].
    SyscallExits,
}

impl SockIoPath {
    fn choose(tracefs: &Tracefs) -> Self {
        let forced = std::env::var_os("NETWATCH_SOCKIO").is_some_and(|v| v == "exits");
        if forced || SOCKIO_RAW.iter().any(|n| !tracefs.has("sock", n)) {
            Self::SyscallExits
        } else {
            Self::Raw
        }
    }
}

/// Raw tracepoints that are also tracefs events (category): on a kernel without the
/// event (sock_send_length and sock_recv_length are from Linux 6.3), only their
/// source is switched off, with a warning.
const RAW_IN_TRACEFS: &[(&str, &str)] = &[
    ("sock_send_length", "sock"),
    ("sock_recv_length", "sock"),
    ("inet_sk_error_report", "sock"),
    ("sched_process_fork", "sched"),
];

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

/// Programs that read kernel structs at BTF-derived offsets and do nothing without.
const NEEDS_OFFSETS: &[&str] = &["inet_sk_error_report", "sched_process_fork"];

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Capability(#[from] MissingCapability),
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error("no event source can be attached on this kernel: {0}")]
    NothingToAttach(String),
    #[error("following forks (-p, -- CMD) needs the kernel's BTF: {0}")]
    NeedsBtf(String),
    #[error("loading the eBPF object")]
    Object(#[source] Box<aya::EbpfError>),
    #[error("program {0} is missing from the eBPF object")]
    MissingProgram(&'static str),
    #[error("loading program {name}")]
    Program {
        name: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("attaching program {name} to {hook}")]
    Attach {
        name: &'static str,
        hook: String,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("map {name}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
}

pub struct Options {
    /// Only these processes and their descendants (empty: the whole host, unless
    /// `spawner` is set).
    pub pids: Vec<u32>,
    /// Watch every process this thread group forks (netwatch's own pid for `-- CMD`).
    pub spawner: Option<u32>,
    /// Queue successful connects too.
    pub verbose: bool,
    /// `--cgroup`: only tasks in this cgroup (id, depth) or below.
    pub cgroup: Option<(u64, u32)>,
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_buffer_size: u32,
}

/// The loaded, attached programs. Dropping it detaches everything.
pub struct Tracer {
    pub ebpf: Ebpf,
    /// Sources with at least one attached program.
    pub attached: Vec<&'static str>,
    /// What is switched off because the running kernel lacks it, with why.
    pub disabled: Vec<String>,
    /// The attachments, owned here so that they can be detached in parallel.
    links: Vec<Link>,
}

/// An attachment; dropping it detaches the program. Never read: held to be dropped.
#[expect(dead_code, reason = "the links are held only to be dropped (detached)")]
enum Link {
    Tracepoint(TracePointLink),
    Raw(RawTracePointLink),
}

impl Tracer {
    /// Programs attached.
    pub fn programs_attached(&self) -> usize {
        self.links.len()
    }

    /// Runs of each program the kernel skipped because another BPF program was running
    /// on that CPU (`recursion_misses`): any failure in those runs is not counted
    /// anywhere else. Programs with none are left out.
    pub fn missed_runs(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<(&'static str, u64)> = Vec::new();
        for p in PROGRAMS {
            if out.iter().any(|(name, _)| *name == p.name) {
                continue;
            }
            let Some(Ok(fd)) = self.ebpf.program(p.name).map(|prog| prog.fd()) else {
                continue;
            };
            if let Some(n) = recursion_misses(fd.as_fd()).filter(|n| *n > 0) {
                out.push((p.name, n));
            }
        }
        out
    }

    /// Entries in the WATCHED map now.
    pub fn watched_entries(&self) -> usize {
        self.ebpf
            .map(WATCHED_MAP)
            .and_then(|m| HashMap::<_, u32, u8>::try_from(m).ok())
            .map_or(0, |m| m.keys().filter(Result::is_ok).count())
    }
}

impl Drop for Tracer {
    /// Detaching a tracepoint waits for an RCU tasks-trace grace period
    /// (perf_trace_event_unreg -> synchronize_rcu_tasks_trace), about 65 ms here, so
    /// detaching ~27 programs one after the other took 1.8 s. Concurrent waiters
    /// share grace periods: detach them all at once.
    fn drop(&mut self) {
        let links = std::mem::take(&mut self.links);
        std::thread::scope(|s| {
            for link in links {
                s.spawn(move || drop(link));
            }
        });
    }
}

/// `bpf_prog_info.recursion_misses` of the program `fd` (Linux 5.12+; aya does not
/// expose it): the uapi struct's layout is fixed, the field is at byte 208.
fn recursion_misses(fd: BorrowedFd<'_>) -> Option<u64> {
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    const RECURSION_MISSES: usize = 208;
    #[repr(C, align(8))]
    struct Info([u8; 232]);
    #[repr(C)]
    struct Attr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut info = Info([0; 232]);
    let mut attr = Attr {
        bpf_fd: u32::try_from(fd.as_raw_fd()).ok()?,
        info_len: 232,
        info: std::ptr::addr_of_mut!(info) as u64,
    };
    // SAFETY: BPF_OBJ_GET_INFO_BY_FD writes at most `info_len` bytes to `info`, which
    // is that large, and updates `attr.info_len`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            std::ptr::addr_of_mut!(attr),
            size_of::<Attr>(),
        )
    };
    // An older kernel fills less and has no such field.
    if ret != 0 || (attr.info_len as usize) < RECURSION_MISSES + 8 {
        return None;
    }
    let bytes: [u8; 8] = info.0[RECURSION_MISSES..RECURSION_MISSES + 8]
        .try_into()
        .ok()?;
    Some(u64::from_ne_bytes(bytes))
}

fn hook_name(hook: Hook) -> String {
    match hook {
        Hook::Tracepoint(c, n) => format!("tracepoint {c}:{n}"),
        Hook::Raw(n) => format!("raw tracepoint {n}"),
    }
}

pub fn load(opts: &Options) -> Result<Tracer, LoadError> {
    caps::check()?;
    let tracefs = Tracefs::find_or_mount()?;
    let filtering = !opts.pids.is_empty() || opts.spawner.is_some();

    let mut disabled = Vec::new();
    let kernel_btf = KernelBtf::load();
    if let Ok(b) = &kernel_btf {
        crate::event::reset::set_reason_names(b.enum_names("sk_rst_reason", "SK_RST_REASON_"));
    }
    let offsets = match kernel_btf.and_then(|b| b.offsets()) {
        Ok((offsets, missing)) => {
            disabled.extend(missing.iter().map(ToString::to_string));
            offsets
        }
        Err(e) => {
            if filtering {
                return Err(LoadError::NeedsBtf(e.to_string()));
            }
            disabled.push(format!(
                "{e}: socket endpoints, exit status, forks and asynchronous connect errors are not traced"
            ));
            KernelOffsets::default()
        }
    };
    let layout = tp_layout(&tracefs, &mut disabled);

    let sockio = SockIoPath::choose(&tracefs);
    let mut wanted: Vec<&'static Program> = Vec::new();
    let replaced = |p: &&Program| {
        sockio == SockIoPath::SyscallExits
            && matches!(p.hook, Hook::Raw(n) if SOCKIO_RAW.contains(&n))
    };
    let exits: &'static [Program] = match sockio {
        SockIoPath::Raw => &[],
        SockIoPath::SyscallExits => SOCKIO_EXITS,
    };
    for p in PROGRAMS.iter().filter(|p| !replaced(p)).chain(exits) {
        let missing = match p.hook {
            Hook::Tracepoint(c, n) => !tracefs.has(c, n),
            // Already said when BTF is unavailable.
            Hook::Raw(_) if offsets.valid == 0 && NEEDS_OFFSETS.contains(&p.name) => continue,
            Hook::Raw("inet_sk_error_report") if offsets.features & FEATURE_SK_ERR == 0 => continue,
            // A raw tracepoint is there when its tracefs event is.
            Hook::Raw(n) => RAW_IN_TRACEFS
                .iter()
                .find(|(name, _)| *name == n)
                .is_some_and(|(_, category)| !tracefs.has(category, n)),
        };
        let unusable = matches!(p.hook, Hook::Tracepoint("syscalls", n) if !sys_exit_layout_ok(&tracefs, n))
            || match p.name {
                "tcp_receive_reset" => layout.rr_skaddr == ABSENT,
                "tcp_send_reset" => {
                    layout.sr_skaddr == ABSENT
                        || (layout.sr_saddr == ABSENT && layout.sr_tuple == ABSENT)
                }
                "signal_generate" => layout.sg_sig == ABSENT || layout.sg_pid == ABSENT,
                _ => false,
            };
        if missing {
            disabled.push(format!(
                "{}: {} does not exist on this kernel",
                p.source,
                hook_name(p.hook)
            ));
        } else if unusable {
            disabled.push(format!(
                "{}: {} has an unknown record layout",
                p.source,
                hook_name(p.hook)
            ));
        } else {
            wanted.push(p);
        }
    }
    if wanted.is_empty() {
        return Err(LoadError::NothingToAttach(disabled.join("; ")));
    }

    let config = Config {
        filter_pids: u32::from(filtering),
        spawner_tgid: opts.spawner.unwrap_or(0),
        verbose: u32::from(opts.verbose),
        cgroup_id: opts.cgroup.map_or(0, |(id, _)| id),
        cgroup_level: opts.cgroup.map_or(0, |(_, level)| level),
        never: 0,
        _pad: 0,
    };
    let mut ebpf = EbpfLoader::new()
        .override_global(CONFIG_GLOBAL, &config, true)
        .override_global(TP_LAYOUT_GLOBAL, &layout, true)
        .override_global(KERNEL_OFFSETS_GLOBAL, &offsets, true)
        .map_max_entries(EVENTS_MAP, opts.ring_buffer_size)
        .load(OBJECT)
        .map_err(|e| LoadError::Object(Box::new(e)))?;

    // Fill the filter before anything is attached, so no event escapes it.
    if !opts.pids.is_empty() {
        let map = ebpf.map_mut(WATCHED_MAP).ok_or(LoadError::Map {
            name: WATCHED_MAP,
            source: MapError::InvalidName {
                name: WATCHED_MAP.into(),
            },
        })?;
        let mut watched: HashMap<_, u32, u8> =
            HashMap::try_from(map).map_err(|source| LoadError::Map {
                name: WATCHED_MAP,
                source,
            })?;
        for &pid in &opts.pids {
            watched
                .insert(&pid, &1, 0)
                .map_err(|source| LoadError::Map {
                    name: WATCHED_MAP,
                    source,
                })?;
        }
    }

    let mut attached: Vec<&'static str> = Vec::new();
    let mut links = Vec::new();
    for p in wanted {
        links.push(attach(&mut ebpf, p)?);
        // The ready line says which way socket I/O is traced.
        let source = match (p.source, sockio) {
            ("sockio", SockIoPath::SyscallExits) => "sockio (at syscall exits)",
            (source, _) => source,
        };
        if !attached.contains(&source) {
            attached.push(source);
        }
    }
    Ok(Tracer {
        ebpf,
        attached,
        disabled,
        links,
    })
}

fn attach(ebpf: &mut Ebpf, p: &'static Program) -> Result<Link, LoadError> {
    let program_error = |source| LoadError::Program {
        name: p.name,
        source: Box::new(source),
    };
    let attach_error = |source| LoadError::Attach {
        name: p.name,
        hook: hook_name(p.hook),
        source: Box::new(source),
    };
    let program = ebpf
        .program_mut(p.name)
        .ok_or(LoadError::MissingProgram(p.name))?;
    match p.hook {
        Hook::Tracepoint(category, name) => {
            let tp: &mut TracePoint = program.try_into().map_err(program_error)?;
            if tp.fd().is_err() {
                tp.load().map_err(program_error)?;
            }
            let id = tp.attach(category, name).map_err(attach_error)?;
            Ok(Link::Tracepoint(tp.take_link(id).map_err(attach_error)?))
        }
        Hook::Raw(name) => {
            let tp: &mut RawTracePoint = program.try_into().map_err(program_error)?;
            if tp.fd().is_err() {
                tp.load().map_err(program_error)?;
            }
            let id = tp.attach(name).map_err(attach_error)?;
            Ok(Link::Raw(tp.take_link(id).map_err(attach_error)?))
        }
    }
}

/// Offsets of the record fields the reset, signal and process programs read.
/// A tracepoint or field the kernel lacks stays [`ABSENT`].
fn tp_layout(tracefs: &Tracefs, disabled: &mut Vec<String>) -> TpLayout {
    let mut l = TpLayout::UNKNOWN;
    let mut format = |category: &str, name: &str| {
        if !tracefs.has(category, name) {
            return None;
        }
        tracefs
            .format(category, name)
            .map_err(|e| disabled.push(format!("{category}:{name}: {e}")))
            .ok()
    };
    let offset = |format: &Format, field: &str| format.field(field).map_or(ABSENT, |f| f.offset);
    if let Some(f) = format("tcp", "tcp_receive_reset") {
        l.rr_skaddr = offset(&f, "skaddr");
    }
    if let Some(f) = format("tcp", "tcp_send_reset") {
        send_reset_layout(&f, &mut l);
    }
    let mut read = |category: &str, name: &str, fields: &mut [(&str, &mut u32)]| {
        if let Some(f) = format(category, name) {
            for (field, slot) in fields.iter_mut() {
                **slot = offset(&f, field);
            }
        }
    };
    read(
        "signal",
        "signal_generate",
        &mut [
            ("sig", &mut l.sg_sig),
            ("code", &mut l.sg_code),
            ("comm", &mut l.sg_comm),
            ("pid", &mut l.sg_pid),
            ("group", &mut l.sg_group),
            ("result", &mut l.sg_result),
        ],
    );
    read(
        "sched",
        "sched_process_exit",
        &mut [("group_dead", &mut l.pe_group_dead)],
    );
    read(
        "sched",
        "sched_process_exec",
        &mut [("old_pid", &mut l.ex_old_pid)],
    );
    l
}

/// `tcp:tcp_send_reset`'s fields. Since Linux 6.10 the record holds the RST's
/// addresses as `sockaddr_in6`-sized buffers and the reset's `reason`; before, the
/// socket's ports, family and addresses one by one (`sport` ... `daddr_v6`, in the
/// order [`SR_TUPLE_LEN`] describes) and no reason. Either is read; `state` is in both.
fn send_reset_layout(format: &Format, l: &mut TpLayout) {
    let field = |name: &str| format.field(name).ok();
    l.sr_skaddr = field("skaddr").map_or(ABSENT, |f| f.offset);
    l.sr_state = field("state")
        .filter(|f| f.size == 4)
        .map_or(ABSENT, |f| f.offset);
    l.sr_reason = field("reason")
        .filter(|f| f.size == 4)
        .map_or(ABSENT, |f| f.offset);
    if let (Some(s), Some(d)) = (field("saddr"), field("daddr"))
        && s.size == 28
        && d.size == 28
    {
        l.sr_saddr = s.offset;
        l.sr_daddr = d.offset;
        return;
    }
    // The older layout, accepted only packed as the program reads it.
    let Some(sport) = field("sport") else { return };
    let expected = [
        ("sport", 0, 2),
        ("dport", 2, 2),
        ("family", 4, 2),
        ("saddr", 6, 4),
        ("daddr", 10, 4),
        ("saddr_v6", 14, 16),
        ("daddr_v6", 30, 16),
    ];
    if expected.iter().all(|(name, at, size)| {
        field(name).is_some_and(|f| f.offset == sport.offset + at && f.size == *size)
    }) && expected
        .last()
        .is_some_and(|(_, at, size)| (at + size) as usize == SR_TUPLE_LEN)
    {
        l.sr_tuple = sport.offset;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(text: &str) -> TpLayout {
        let mut l = TpLayout::UNKNOWN;
        send_reset_layout(&Format::from_text("tcp:tcp_send_reset", text), &mut l);
        l
    }

    /// Linux 6.10 and later (this host's 6.18, Debian's 6.12).
    #[test]
    fn send_reset_with_sockaddr_buffers_and_a_reason() {
        let l = layout(include_str!("testdata/tcp_send_reset-6.18.format"));
        assert_eq!(
            (l.sr_skaddr, l.sr_state, l.sr_reason, l.sr_saddr, l.sr_daddr),
            (16, 24, 28, 32, 60)
        );
        assert_eq!(l.sr_tuple, ABSENT);
    }

    /// Linux 6.1 (Debian 12): ports, family and addresses one by one, no reason.
    #[test]
    fn send_reset_with_the_older_tuple_and_no_reason() {
        let l = layout(include_str!("testdata/tcp_send_reset-6.1.format"));
        assert_eq!((l.sr_skaddr, l.sr_state, l.sr_tuple), (16, 24, 28));
        assert_eq!(
            (l.sr_reason, l.sr_saddr, l.sr_daddr),
            (ABSENT, ABSENT, ABSENT)
        );
    }

    /// A layout neither kernel has is not read at the wrong offsets.
    #[test]
    fn send_reset_with_an_unknown_layout_reads_no_addresses() {
        let text = include_str!("testdata/tcp_send_reset-6.1.format")
            .replace("offset:30;\tsize:2", "offset:31;\tsize:2");
        let l = layout(&text);
        assert_eq!((l.sr_tuple, l.sr_saddr), (ABSENT, ABSENT));
        assert_eq!(l.sr_skaddr, 16);
    }
}
