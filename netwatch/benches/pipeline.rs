//! The daemon's hot path without a kernel: records made up in memory, as the kernel
//! programs write them, go through decode, view, lookups, classifier and printer into a
//! 64 KiB buffered writer that discards what it is given, as `netwatch > FILE` would
//! with a very fast file.
//!
//! ```sh
//! cargo +1.98.0 bench -p netwatch --bench pipeline             # every kind, text and -j
//! cargo +1.98.0 bench -p netwatch --bench pipeline -- bind 5000000
//! ```
//!
//! Prints, per format and record kind: ns per record, records per second, bytes and heap
//! allocations per record. The records are those of `xtask storm`: one process failing
//! the same call over and over (bind: EADDRINUSE on a port it holds itself). Run without
//! `--bench` (as `cargo test --benches` does), it only checks that the pipeline runs.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    fs,
    io::{self, BufWriter, Write},
    net::TcpListener,
    os::unix::fs::MetadataExt as _,
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use netwatch::{
    clock::Clock,
    output::{Format, Printer},
    pipeline::{Pipeline, View},
};
use netwatch_common::{
    AF_INET, COMM_LEN, EventKind, Header, SOCK_BINDPORT_LOCK, SOCK_RESOLVED, SockAddr, SockInfo,
    Syscall, bind::BindEvent, connect::ConnectEvent, sockio::SockIoEvent,
};

/// Counts heap allocations, to show the hot path makes none.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A writer that keeps nothing and counts bytes.
#[derive(Default)]
struct Discard {
    bytes: u64,
}

impl Write for Discard {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The kernel's stamp advances this much per record: a storm of ~1.4 M/s.
const STEP_NS: u64 = 700;
const KINDS: [&str; 4] = ["bind", "connect", "write", "read"];

fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: the wire structs are repr(C) integers and byte arrays without padding.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), size_of::<T>()) }.to_vec()
}

fn inet4(port: u16) -> SockAddr {
    let mut addr = [0; 16];
    addr[..4].copy_from_slice(&[127, 0, 0, 1]);
    SockAddr {
        addr,
        family: AF_INET,
        port,
    }
}

fn tcp(sk: u64, local: u16, remote: u16, state: u8, userlocks: u8) -> SockInfo {
    SockInfo {
        sk,
        local: inet4(local),
        remote: inet4(remote),
        family: AF_INET,
        sock_type: 1,
        protocol: 6,
        state,
        userlocks,
        flags: SOCK_RESOLVED,
        _pad: 0,
    }
}

/// This process's cgroup v2 id, as the kernel stamps it on records (0 without v2).
fn own_cgroup() -> u64 {
    let Some(root) = netwatch::cgroup::mount() else {
        return 0;
    };
    let path = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let rel = path
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    fs::metadata(root.join(rel.trim_start_matches('/'))).map_or(0, |m| m.ino())
}

/// One record of `kind` from this process, failing on `port`.
fn record(kind: &str, cgroup_id: u64, port: u16) -> Vec<u8> {
    let event_kind = match kind {
        "bind" => EventKind::Bind,
        "connect" => EventKind::Connect,
        _ => EventKind::SockIo,
    };
    let mut comm = [0; COMM_LEN];
    comm[..5].copy_from_slice(b"storm");
    let header = Header {
        ktime_ns: 0,
        cgroup_id,
        kind: event_kind as u32,
        tgid: std::process::id(),
        tid: std::process::id(),
        _pad: 0,
        comm,
    };
    let sockio = |syscall: Syscall, errno| {
        bytes_of(&SockIoEvent {
            header,
            sock: tcp(0xffff_8880_1234_5678, port, 40_000, 7, 0),
            errno,
            fd: 5,
            syscall: syscall as u32,
            _pad: 0,
        })
    };
    match kind {
        "bind" => bytes_of(&BindEvent {
            header,
            errno: 98,
            fd: 4,
            addr: inet4(port),
            sock_type: 1,
            _pad: 0,
        }),
        "connect" => bytes_of(&ConnectEvent {
            header,
            sock: tcp(0xffff_8880_1234_5678, 40_000, port, 7, SOCK_BINDPORT_LOCK),
            addr: inet4(port),
            errno: 99,
            fd: 4,
            origin: 0,
            _pad: [0; 2],
        }),
        "write" => sockio(Syscall::Sendto, 32),
        "read" => sockio(Syscall::Recvfrom, 104),
        other => panic!("unknown kind {other}: one of {KINDS:?}"),
    }
}

struct Run {
    ns_per_record: f64,
    bytes_per_record: f64,
    allocations_per_record: f64,
}

fn run(format: Format, kind: &str, count: u64) -> io::Result<Run> {
    // The port the records fail on is held by this process, as in `xtask storm`.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut raw = record(kind, own_cgroup(), port);
    let printer = Printer::new(
        BufWriter::with_capacity(64 * 1024, Discard::default()),
        format,
        Clock::new(),
    );
    let mut pipeline = Pipeline::new(printer, View::new(false, false, []), None);
    let mut ktime = Clock::monotonic_now();
    let mut feed = |pipeline: &mut Pipeline<_>, n: u64| -> io::Result<()> {
        for _ in 0..n {
            ktime += STEP_NS;
            raw[..8].copy_from_slice(&ktime.to_ne_bytes());
            pipeline.record(&raw, |_| None)?;
        }
        Ok(())
    };
    // Warm up: the first record of a storm is looked up and diagnosed.
    feed(&mut pipeline, 1000)?;
    let bytes_before = pipeline.out.writer_mut().get_ref().bytes;
    let allocations_before = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    feed(&mut pipeline, count)?;
    pipeline.out.flush()?;
    let elapsed = start.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations_before;
    let bytes = pipeline.out.writer_mut().get_ref().bytes - bytes_before;
    drop(listener);
    Ok(Run {
        ns_per_record: elapsed.as_nanos() as f64 / count as f64,
        bytes_per_record: bytes as f64 / count as f64,
        allocations_per_record: allocations as f64 / count as f64,
    })
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let timed = args.iter().any(|a| a == "--bench");
    let rest: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let kinds: Vec<&str> = match rest.first() {
        Some(k) => vec![k.as_str()],
        None => KINDS.to_vec(),
    };
    let count = match (rest.get(1), timed) {
        (Some(n), _) => n.parse().expect("COUNT is a number"),
        (None, true) => 2_000_000,
        (None, false) => 1_000,
    };
    for format in [Format::Text, Format::Json] {
        for kind in &kinds {
            let r = run(format, kind, count)?;
            if timed {
                println!(
                    "{:<4} {kind:<8} {:>7.1} ns/record {:>10.0} records/s {:>6.1} bytes/record {:>6.3} allocations/record",
                    if format == Format::Json { "-j" } else { "text" },
                    r.ns_per_record,
                    1e9 / r.ns_per_record,
                    r.bytes_per_record,
                    r.allocations_per_record,
                );
            }
        }
    }
    Ok(())
}
