//! Loading the embedded kernel programs, configuring them, attaching them.
//!
//! Every failure names what failed (the capability, the tracepoint, the program, the
//! map): netwatch must never half-start and look healthy.

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapError},
    programs::{ProgramError, TracePoint},
};
use netwatch_common::{CONFIG_GLOBAL, Config, EVENTS_MAP, WATCHED_MAP};

use crate::{
    caps::{self, MissingCapability},
    tracefs::{Tracefs, TracefsError},
};

/// The kernel programs, built by build.rs and embedded: the binary needs nothing else.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/netwatch"));

/// One kernel program and the tracepoint it attaches to.
#[derive(Debug)]
pub struct Program {
    /// Function name in netwatch-ebpf.
    pub name: &'static str,
    pub category: &'static str,
    pub tracepoint: &'static str,
}

/// An event source: the programs that feed one kind of event.
#[derive(Debug)]
pub struct Source {
    pub name: &'static str,
    pub programs: &'static [Program],
}

pub const SOURCES: &[Source] = &[Source {
    name: "bind",
    programs: &[Program {
        name: "sys_exit_bind",
        category: "syscalls",
        tracepoint: "sys_exit_bind",
    }],
}];

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Capability(#[from] MissingCapability),
    #[error(transparent)]
    Tracefs(#[from] TracefsError),
    #[error(
        "syscalls:sys_exit_* records disagree on the offset of `ret` ({first} in {first_tp}, \
         {other} in {other_tp}); this kernel is not supported"
    )]
    RetOffset {
        first: u32,
        first_tp: &'static str,
        other: u32,
        other_tp: &'static str,
    },
    #[error("no event source can be attached on this kernel: {0}")]
    NothingToAttach(String),
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
    #[error("attaching program {name} to tracepoint {category}:{tracepoint}")]
    Attach {
        name: &'static str,
        category: &'static str,
        tracepoint: &'static str,
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
    /// Only these processes (empty: the whole host).
    pub pids: Vec<u32>,
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_buffer_size: u32,
}

/// The loaded, attached programs. Dropping it detaches everything.
pub struct Tracer {
    pub ebpf: Ebpf,
    /// Sources that are attached.
    pub attached: Vec<&'static str>,
    /// Sources switched off because the running kernel lacks a tracepoint, with why.
    pub disabled: Vec<(&'static str, String)>,
}

pub fn load(opts: &Options) -> Result<Tracer, LoadError> {
    caps::check()?;
    let tracefs = Tracefs::find_or_mount()?;

    let mut available = Vec::new();
    let mut disabled = Vec::new();
    for source in SOURCES {
        match source
            .programs
            .iter()
            .find(|p| !tracefs.has(p.category, p.tracepoint))
        {
            Some(p) => disabled.push((
                source.name,
                format!(
                    "tracepoint {}:{} does not exist on this kernel",
                    p.category, p.tracepoint
                ),
            )),
            None => available.push(source),
        }
    }
    if available.is_empty() {
        let why: Vec<String> = disabled
            .iter()
            .map(|(s, why)| format!("{s}: {why}"))
            .collect();
        return Err(LoadError::NothingToAttach(why.join("; ")));
    }

    let config = Config {
        sys_exit_ret_offset: sys_exit_ret_offset(&tracefs, &available)?,
        filter_pids: u32::from(!opts.pids.is_empty()),
    };
    let mut ebpf = EbpfLoader::new()
        .override_global(CONFIG_GLOBAL, &config, true)
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

    let mut attached = Vec::new();
    for source in available {
        for p in source.programs {
            attach(&mut ebpf, p)?;
        }
        attached.push(source.name);
    }
    Ok(Tracer {
        ebpf,
        attached,
        disabled,
    })
}

fn attach(ebpf: &mut Ebpf, p: &'static Program) -> Result<(), LoadError> {
    let program_error = |source| LoadError::Program {
        name: p.name,
        source: Box::new(source),
    };
    let program = ebpf
        .program_mut(p.name)
        .ok_or(LoadError::MissingProgram(p.name))?;
    let tp: &mut TracePoint = program.try_into().map_err(program_error)?;
    tp.load().map_err(program_error)?;
    tp.attach(p.category, p.tracepoint)
        .map_err(|source| LoadError::Attach {
            name: p.name,
            category: p.category,
            tracepoint: p.tracepoint,
            source: Box::new(source),
        })?;
    Ok(())
}

/// Every `syscalls:sys_exit_*` record has the same layout; the programs share one
/// offset, so check that the kernel agrees for each tracepoint we attach.
fn sys_exit_ret_offset(tracefs: &Tracefs, sources: &[&Source]) -> Result<u32, LoadError> {
    let mut first: Option<(u32, &'static str)> = None;
    for p in sources
        .iter()
        .flat_map(|s| s.programs)
        .filter(|p| p.category == "syscalls")
    {
        let off = tracefs
            .format(p.category, p.tracepoint)?
            .field("ret")?
            .offset;
        match first {
            None => first = Some((off, p.tracepoint)),
            Some((f, ftp)) if f != off => {
                return Err(LoadError::RetOffset {
                    first: f,
                    first_tp: ftp,
                    other: off,
                    other_tp: p.tracepoint,
                });
            }
            Some(_) => {}
        }
    }
    Ok(first.map_or(16, |(off, _)| off))
}
