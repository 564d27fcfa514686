//! The daemon: load, attach, stream until told to stop (or until CMD ends).

use std::{
    ffi::OsString,
    io::{self, BufWriter, IsTerminal as _},
    os::unix::{ffi::OsStrExt as _, process::ExitStatusExt as _},
    path::Path,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use netwatch_common::EventKind;
use tokio::{
    process::{Child, Command},
    signal::unix::{Signal, SignalKind, signal},
};

use crate::{
    cli::Args,
    clock::{Clock, TimeColumn},
    counts::{KernelCounts, LostExits},
    event::escape_name,
    loader::{self, Options, Tracer},
    metrics::{self, Metrics},
    output::{
        Format, Printer, RunStats, color,
        sink::{OnLoss, Sink},
    },
    pipeline::{Pipeline, View},
    procfs,
    ringbuf::{Lost, Reader},
};

/// How long the reader sleeps when the kernel has not woken it: the latency of a
/// quiet stream.
const DRAIN_INTERVAL: Duration = Duration::from_millis(10);
/// How often the lost-record counters are read and reported (at most once a second).
const LOST_INTERVAL: Duration = Duration::from_secs(1);
/// How often /proc is asked whether the `-p` processes are still there, in case
/// their exit records never came.
const PROC_INTERVAL: Duration = Duration::from_secs(1);
/// `--check`'s exit status when a process exited 0 after an unrecovered bind failure.
pub const EXIT_FLAGGED: u8 = 86;

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pids = resolve_pids(&args.pids)?;
    // Before the ready line: from then on, these signals are netwatch's to handle
    // (SIGUSR1 would end it otherwise).
    let mut signals = Signals::install()?;

    let cgroup = args
        .cgroup
        .as_deref()
        .map(crate::cgroup::resolve_filter)
        .transpose()?;
    // Before anything is loaded: a metrics port in use stops netwatch with the reason.
    let metrics_listener = args.metrics.map(metrics::bind).transpose()?;
    let metrics_addr = metrics_listener
        .as_ref()
        .map(|l| {
            l.local_addr()
                .context("--metrics: the listening socket's address")
        })
        .transpose()?;
    let spawner = (!args.command.is_empty()).then(std::process::id);
    let mut tracer = loader::load(&Options {
        pids: pids.clone(),
        spawner,
        verbose: args.verbose,
        cgroup: cgroup.as_ref().map(|f| (f.id, f.level)),
        filters: args.filters(),
        ring_buffer_size: args.ring_buffer_size,
    })?;
    for why in &tracer.disabled {
        tracing::warn!("{why}");
    }
    // A process that ended while the programs were loading is not being watched:
    // say so rather than trace nothing.
    for &pid in &pids {
        if procfs::exited(pid) {
            bail!("-p {pid}: the process exited before tracing started");
        }
    }
    let metrics = metrics_listener.map(|listener| {
        let m = Arc::new(Metrics::new(
            tracer.programs_attached(),
            args.ring_buffer_size,
        ));
        tokio::spawn(metrics::serve(listener, m.clone()));
        m
    });
    let mut reader = Reader::new(&mut tracer.ebpf)?;
    let mut lost = Lost::new(&mut tracer.ebpf)?;
    let kernel_counts = KernelCounts::new(&mut tracer.ebpf)?;
    let lost_exits = LostExits::new(&mut tracer.ebpf)?;

    let format = if args.json {
        Format::Json
    } else {
        Format::Text
    };
    // With -- CMD the exit status is the result: losing the output must not end the
    // trace (see output::sink).
    let on_loss = if spawner.is_some() {
        OnLoss::Discard
    } else {
        OnLoss::Fail
    };
    let sink = Sink::new(args.output.clone(), on_loss).with_context(|| {
        format!(
            "-o {}",
            args.output.as_deref().unwrap_or(Path::new("-")).display()
        )
    })?;
    // Second 0 of `-T relative`: everything is attached (the ready line follows).
    let time = TimeColumn::new(args.time, TimeColumn::local_zone(), Clock::monotonic_now());
    let color = color::enabled(
        args.color,
        args.json,
        args.output.is_some(),
        io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let out = Printer::new(
        BufWriter::with_capacity(64 * 1024, sink),
        format,
        Clock::new(),
    )
    .with_time(time)
    .with_color(color);
    let mut scope = match (&pids[..], spawner) {
        ([], None) => "the whole host".to_owned(),
        (pids, spawner) => {
            let mut parts: Vec<String> = pids.iter().map(|p| format!("pid {p}")).collect();
            if spawner.is_some() {
                parts.push(format!(
                    "command {}",
                    escape_name(args.command[0].as_bytes())
                ));
            }
            format!("{} and their children", parts.join(", "))
        }
    };
    if let Some(f) = &cgroup {
        scope = format!("{scope} in cgroup {}", escape_name(f.path.as_bytes()));
    }
    let filters = args.filters().describe();
    if !filters.is_empty() {
        scope = format!("{scope}, only {}", filters.join(", "));
    }
    let serving =
        metrics_addr.map_or_else(String::new, |a| format!("; metrics on http://{a}/metrics"));
    // Tests and scripts wait for this line: everything is attached from here on.
    tracing::info!(
        "ready: tracing {scope} ({}){serving}; Ctrl-C to stop",
        tracer.attached.join(", ")
    );

    // Spawned after attaching, so CMD is watched from its first instruction: the
    // kernel adds every child of netwatch to the filter at fork.
    let child = match spawner {
        Some(_) => match spawn(&args.command) {
            Ok(child) => Some(child),
            Err(code) => return Ok(code),
        },
        None => None,
    };

    let roots = pids
        .iter()
        .copied()
        .chain(child.as_ref().and_then(Child::id));
    let mut view = View::new(args.verbose, args.summary_only || args.quiet, roots);
    // -p ends, as `strace -p` does, when the processes named have exited (not the
    // children the kernel follows); with CMD, CMD's end is the end.
    if spawner.is_none() && !pids.is_empty() && !args.keep_going {
        view = view.ending_with(pids.iter().copied());
    }
    let mut streams = Streams {
        reader: &mut reader,
        lost: &mut lost,
        pipeline: Pipeline::new(out, view, metrics),
        kernel_counts,
        lost_exits,
        recovered_exits: 0,
        ring_size: args.ring_buffer_size,
        lost_seen: Vec::new(),
        quiet: args.quiet,
    };
    let result = streams
        .run(&mut signals, &tracer, args.duration, child)
        .await;
    let watched_entries = tracer.watched_entries();
    let missed = tracer.missed_runs();
    drop(tracer); // detach before the summary is printed
    let result = result.and_then(|code| {
        let stats = streams.run_stats(missed, watched_entries, false)?;
        let Pipeline {
            out, classifier, ..
        } = &mut streams.pipeline;
        for (pid, counts) in streams.kernel_counts.take_all() {
            classifier.lost_counts(pid, &counts, || procfs::comm_of(pid));
        }
        if !args.quiet {
            out.summary(&classifier.summary(), &stats)?;
            out.flush()?;
        }
        // Whether anything was printed or not: --quiet --check -- CMD is a CI guard.
        if args.check && classifier.any_flagged_exit_zero() {
            eprintln!(
                "netwatch: check failed: a process exited 0 after a failed bind (see the diagnosis)"
            );
            return Ok(ExitCode::from(EXIT_FLAGGED));
        }
        Ok(code)
    });
    match result {
        Ok(code) => Ok(code),
        // Our reader went away (`netwatch | head`): a normal end, not an error.
        Err(e)
            if e.downcast_ref::<io::Error>()
                .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe) =>
        {
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e),
    }
}

/// `-p` values as the processes the kernel filters on: a thread's id stands for its
/// process (said on stderr: the kernel filters thread groups), and each process once.
fn resolve_pids(given: &[u32]) -> anyhow::Result<Vec<u32>> {
    let mut pids = Vec::with_capacity(given.len());
    for &pid in given {
        let tgid = procfs::tgid_of(pid)
            .with_context(|| format!("-p {pid}: reading /proc/{pid}/status"))?
            .ok_or_else(|| anyhow::anyhow!("-p {pid}: no such process"))?;
        if tgid != pid {
            tracing::info!(
                "-p {pid} is a thread of process {tgid} ({}): tracing process {tgid}, all its threads",
                procfs::comm_of(tgid)
            );
        }
        if !pids.contains(&tgid) {
            pids.push(tgid);
        }
    }
    Ok(pids)
}

/// Start CMD; on failure print why and return the shell's exit code for it.
fn spawn(command: &[OsString]) -> Result<Child, ExitCode> {
    let name = escape_name(command[0].as_bytes());
    match Command::new(&command[0]).args(&command[1..]).spawn() {
        Ok(child) => Ok(child),
        Err(e) => {
            let code = match e.kind() {
                io::ErrorKind::NotFound => {
                    eprintln!("netwatch: {name}: command not found");
                    127
                }
                io::ErrorKind::PermissionDenied => {
                    eprintln!("netwatch: {name}: permission denied (not executable)");
                    126
                }
                _ => {
                    eprintln!("netwatch: {name}: cannot execute: {e}");
                    126
                }
            };
            Err(ExitCode::from(code))
        }
    }
}

/// The signals netwatch handles.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
    /// The summary so far, tracing goes on (as dd prints its statistics).
    usr1: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        let install = |kind: SignalKind, name: &str| {
            signal(kind).with_context(|| format!("installing the {name} handler"))
        };
        Ok(Self {
            int: install(SignalKind::interrupt(), "SIGINT")?,
            term: install(SignalKind::terminate(), "SIGTERM")?,
            hup: install(SignalKind::hangup(), "SIGHUP")?,
            usr1: install(SignalKind::user_defined1(), "SIGUSR1")?,
        })
    }
}

struct Streams<'a, W: io::Write> {
    reader: &'a mut Reader,
    lost: &'a mut Lost,
    pipeline: Pipeline<W>,
    kernel_counts: KernelCounts,
    lost_exits: LostExits,
    /// Exit records the kernel kept when the ring buffer was full.
    recovered_exits: u64,
    ring_size: u32,
    /// Lost records per kind as last passed on to the metrics.
    lost_seen: Vec<(EventKind, u64)>,
    /// `--quiet`: not even the summary.
    quiet: bool,
}

impl<W: io::Write> Streams<'_, W> {
    /// The facts about the run for the summary; `so_far`: tracing goes on.
    fn run_stats(
        &self,
        missed: Vec<(&'static str, u64)>,
        watched_entries: usize,
        so_far: bool,
    ) -> anyhow::Result<RunStats> {
        Ok(RunStats {
            lost: self.lost.by_kind()?,
            exits_recovered: self.recovered_exits,
            missed,
            proc_counts_entries: self.kernel_counts.occupancy(),
            watched_entries,
            evicted: self.pipeline.classifier.evicted(),
            so_far,
        })
    }
}

impl Streams<'_, BufWriter<Sink>> {
    /// Stream until a signal, CMD's end, `-d`'s deadline, or the end of the `-p`
    /// processes says to stop; the exit code (CMD's, if it ended).
    async fn run(
        &mut self,
        signals: &mut Signals,
        tracer: &Tracer,
        duration: Option<Duration>,
        mut child: Option<Child>,
    ) -> anyhow::Result<ExitCode> {
        if !self.pipeline.view.quiet() {
            self.pipeline.out.header()?;
            self.pipeline.out.flush()?;
        }
        let deadline = duration.map(|d| tokio::time::Instant::now() + d);
        let mut last_lost_check = Instant::now();
        let mut last_proc_check = Instant::now();
        let mut exit = None;
        let mut sigints = 0;
        loop {
            let mut summary_asked = false;
            let mut stop = tokio::select! {
                () = self.reader.wait(DRAIN_INTERVAL) => false,
                () = until(deadline) => {
                    // strace-like: tracing stops, CMD goes on (it is not waited for).
                    if let Some(pid) = child.as_ref().and_then(Child::id) {
                        tracing::info!("-d: tracing stopped; the command (pid {pid}) goes on");
                    }
                    true
                }
                _ = signals.usr1.recv() => {
                    summary_asked = true;
                    false
                }
                _ = signals.int.recv() => {
                    sigints += 1;
                    match &child {
                        // A second Ctrl-C: leave now, without waiting for CMD.
                        Some(_) if sigints >= 2 => return Ok(ExitCode::from(130)),
                        Some(c) => {
                            forward(c, libc::SIGINT);
                            false
                        }
                        None => true,
                    }
                }
                _ = signals.hup.recv() => {
                    // Log rotation: everything so far goes to the old file.
                    self.pipeline.out.flush()?;
                    self.pipeline.out.writer_mut().get_mut().reopen().context("SIGHUP: reopening the output file")?;
                    false
                }
                _ = signals.term.recv() => {
                    match &child {
                        // Pass it on and keep tracing until CMD is gone.
                        Some(c) => {
                            forward(c, libc::SIGTERM);
                            false
                        }
                        None => true,
                    }
                }
                status = wait(&mut child) => {
                    let status = status.context("waiting for the command")?;
                    exit = Some(match (status.code(), status.signal()) {
                        (Some(code), _) => ExitCode::from(code as u8),
                        (None, Some(sig)) => ExitCode::from(128 + sig as u8),
                        (None, None) => ExitCode::FAILURE,
                    });
                    // Its last records (its exit among them) are already queued: the
                    // kernel emits them before the parent is notified.
                    true
                }
            };
            // The fallback for -p exit records that never came: a process /proc calls
            // gone has made its exit record (before it became a zombie), and the drain
            // below reads it and everything before it.
            if last_proc_check.elapsed() >= PROC_INTERVAL {
                last_proc_check = Instant::now();
                self.pipeline.view.forget_exited(procfs::exited);
            }
            let mut io_result = Ok(());
            let mut drained = 0;
            let Self {
                reader,
                pipeline,
                kernel_counts,
                ..
            } = self;
            reader.drain(|bytes| {
                // What the ring buffer held: the record and its 8-byte header.
                drained += bytes.len() + 8;
                if io_result.is_ok() {
                    io_result = pipeline.record(bytes, |pid| kernel_counts.take(pid));
                }
            });
            io_result?;
            if let Some(m) = &self.pipeline.metrics {
                m.ring_fill(drained, self.ring_size);
            }
            // Every -p process has exited (its exit record read, with everything
            // queued before it).
            stop |= self.pipeline.view.all_exited();
            if stop || last_lost_check.elapsed() >= LOST_INTERVAL {
                last_lost_check = Instant::now();
                self.pipeline.out.writer_mut().get_mut().check_reader()?;
                for record in self.lost_exits.take_all() {
                    self.recovered_exits += 1;
                    let counts = &mut self.kernel_counts;
                    self.pipeline.record(&record, |pid| counts.take(pid))?;
                }
                if let Some(m) = &self.pipeline.metrics {
                    for (kind, total) in self.lost.by_kind()? {
                        let seen = self.lost_seen.iter_mut().find(|(k, _)| *k == kind);
                        let before = seen.as_ref().map_or(0, |(_, n)| *n);
                        m.lost(kind.name(), total - before);
                        match seen {
                            Some(entry) => entry.1 = total,
                            None => self.lost_seen.push((kind, total)),
                        }
                    }
                }
                if let Some((count, total)) = self.lost.newly_lost()?
                    && !self.pipeline.view.quiet()
                {
                    self.pipeline
                        .out
                        .lost(Clock::monotonic_now(), count, total)?;
                }
            }
            // Or their exit records were lost, and kept by the kernel.
            stop |= self.pipeline.view.all_exited();
            if summary_asked && !self.quiet && !stop {
                let stats = self.run_stats(tracer.missed_runs(), tracer.watched_entries(), true)?;
                let Pipeline {
                    out, classifier, ..
                } = &mut self.pipeline;
                out.summary(&classifier.summary(), &stats)?;
            }
            self.pipeline.out.flush()?;
            if stop {
                return Ok(exit.unwrap_or(ExitCode::SUCCESS));
            }
        }
    }
}

/// `-d`: resolves at the deadline; never without one.
async fn until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Pass a signal on to CMD (a terminal's Ctrl-C reaches it directly as well: the
/// same process group; a SIGINT sent to netwatch alone would not).
fn forward(child: &Child, sig: i32) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(pid as i32, sig) };
    }
}

/// Wait for the child if there is one; never resolves otherwise.
async fn wait(child: &mut Option<Child>) -> io::Result<std::process::ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}
