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
    ANY_UID, COMM_LEN, CONFIG_GLOBAL, Config, EVENTS_MAP, KERNEL_OFFSETS_GLOBAL, KernelOffsets,
    MAX_FILTER_COMMS, MAX_FILTER_ERRNOS, MAX_FILTER_PORTS, TP_LAYOUT_GLOBAL, WATCHED_MAP,
};

use crate::{
    caps::{self, MissingCapability},
    kernel_btf::KernelBtf,
    tracefs::{Tracefs, TracefsError},
};

mod layout;
mod programs;

use self::programs::{Hook, PROGRAMS, Program, SOCKIO_EXITS, SockIoPath, Source, Usable};

/// The kernel programs, built by build.rs and embedded: the binary needs nothing else.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/netwatch"));

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
    /// The filters of events, checked in the kernel too.
    pub filters: Filters,
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_buffer_size: u32,
}

/// `-u`, `-n`, `-4`/`-6`, `-P` and `--errno`, as the kernel programs apply them (see
/// netwatch-common's `Config`). Empty lists and `None` filter nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    pub uid: Option<u32>,
    /// Process names, at most [`MAX_FILTER_COMMS`], each at most 15 bytes.
    pub names: Vec<String>,
    /// `AF_INET` or `AF_INET6`.
    pub family: Option<u16>,
    /// At most [`MAX_FILTER_PORTS`].
    pub ports: Vec<u16>,
    /// Positive errnos below 4096, at most [`MAX_FILTER_ERRNOS`].
    pub errnos: Vec<i32>,
}

impl Filters {
    /// Each filter set, as the ready line names it.
    pub fn describe(&self) -> Vec<String> {
        let mut parts = Vec::new();
        if let Some(uid) = self.uid {
            parts.push(format!("uid {uid}"));
        }
        for name in &self.names {
            parts.push(format!(
                "name {}",
                crate::event::escape_name(name.as_bytes())
            ));
        }
        match self.family {
            Some(netwatch_common::AF_INET) => parts.push("IPv4".to_owned()),
            Some(netwatch_common::AF_INET6) => parts.push("IPv6".to_owned()),
            _ => {}
        }
        if !self.ports.is_empty() {
            let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
            parts.push(format!("port {}", ports.join(" or ")));
        }
        if !self.errnos.is_empty() {
            let errnos: Vec<_> = self
                .errnos
                .iter()
                .map(|e| crate::errno::label(*e))
                .collect();
            parts.push(errnos.join(" or "));
        }
        parts
    }

    /// Fills the filter fields of `config`.
    fn apply(&self, config: &mut Config) {
        config.uid = self.uid.unwrap_or(ANY_UID);
        config.family = self.family.map_or(0, u32::from);
        for (slot, name) in config.comms.iter_mut().zip(&self.names) {
            let n = name.len().min(COMM_LEN - 1);
            slot[..n].copy_from_slice(&name.as_bytes()[..n]);
        }
        config.comm_count = self.names.len().min(MAX_FILTER_COMMS) as u32;
        for (slot, port) in config.ports.iter_mut().zip(&self.ports) {
            *slot = *port;
        }
        config.port_count = self.ports.len().min(MAX_FILTER_PORTS) as u32;
        for (slot, errno) in config.errnos.iter_mut().zip(&self.errnos) {
            *slot = u16::try_from(*errno).unwrap_or(0);
        }
        config.errno_count = self.errnos.len().min(MAX_FILTER_ERRNOS) as u32;
    }
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
    /// detaching every attachment one after the other took 1.8 s. Concurrent waiters
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
    let layout = layout::tp_layout(&tracefs, &mut disabled);

    let sockio = SockIoPath::choose(&tracefs);
    let mut wanted: Vec<&'static Program> = Vec::new();
    let exits: &'static [Program] = match sockio {
        SockIoPath::Raw => &[],
        SockIoPath::SyscallExits => SOCKIO_EXITS,
    };
    let replaced = |p: &&Program| sockio == SockIoPath::SyscallExits && SockIoPath::replaced(p);
    for p in PROGRAMS.iter().filter(|p| !replaced(p)).chain(exits) {
        let why = match p.usable(&tracefs, &layout, &offsets) {
            Usable::Yes => {
                wanted.push(p);
                continue;
            }
            Usable::Skip => continue,
            Usable::Missing => "does not exist on this kernel",
            Usable::UnknownLayout => "has an unknown record layout",
        };
        disabled.push(format!("{}: {} {why}", p.source.name(), p.hook.describe()));
    }
    if wanted.is_empty() {
        return Err(LoadError::NothingToAttach(disabled.join("; ")));
    }

    let mut config = Config {
        filter_pids: u32::from(filtering),
        spawner_tgid: opts.spawner.unwrap_or(0),
        verbose: u32::from(opts.verbose),
        cgroup_id: opts.cgroup.map_or(0, |(id, _)| id),
        cgroup_level: opts.cgroup.map_or(0, |(_, level)| level),
        ..Config::ALL
    };
    opts.filters.apply(&mut config);
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
            (Source::SockIo, SockIoPath::SyscallExits) => "sockio (at syscall exits)",
            (source, _) => source.name(),
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
        hook: p.hook.describe(),
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
        Hook::Raw { name, .. } => {
            let tp: &mut RawTracePoint = program.try_into().map_err(program_error)?;
            if tp.fd().is_err() {
                tp.load().map_err(program_error)?;
            }
            let id = tp.attach(name).map_err(attach_error)?;
            Ok(Link::Raw(tp.take_link(id).map_err(attach_error)?))
        }
    }
}
