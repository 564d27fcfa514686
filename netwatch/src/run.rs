//! The daemon: load, attach, stream until told to stop.

use std::{
    io::{self, BufWriter},
    path::Path,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    cli::Args,
    clock::Clock,
    event,
    loader::{self, Options},
    output::{Format, Printer},
    ringbuf::{Lost, Reader},
};

/// How long the reader sleeps when the kernel has not woken it: the latency of a
/// quiet stream.
const DRAIN_INTERVAL: Duration = Duration::from_millis(10);
/// How often the lost-record counters are read and reported (at most once a second).
const LOST_INTERVAL: Duration = Duration::from_secs(1);

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    for &pid in &args.pids {
        if !Path::new(&format!("/proc/{pid}")).exists() {
            bail!("-p {pid}: no such process");
        }
    }
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;

    let mut tracer = loader::load(&Options {
        pids: args.pids.clone(),
        ring_buffer_size: args.ring_buffer_size,
    })?;
    for (source, why) in &tracer.disabled {
        eprintln!("netwatch: warning: {source} events disabled: {why}");
    }
    let mut reader = Reader::new(&mut tracer.ebpf)?;
    let mut lost = Lost::new(&mut tracer.ebpf)?;

    let format = if args.json {
        Format::Json
    } else {
        Format::Text
    };
    let mut out = Printer::new(
        BufWriter::with_capacity(64 * 1024, io::stdout()),
        format,
        Clock::new(),
    );
    let scope = if args.pids.is_empty() {
        "the whole host".to_owned()
    } else {
        let pids: Vec<String> = args.pids.iter().map(u32::to_string).collect();
        format!("pid {}", pids.join(", "))
    };
    // Tests and scripts wait for this line: everything is attached from here on.
    eprintln!(
        "netwatch: ready: tracing {scope} ({}); Ctrl-C to stop",
        tracer.attached.join(", ")
    );

    let result = stream(&mut reader, &mut lost, &mut out, &mut sigint, &mut sigterm).await;
    drop(tracer); // detach before anything else is printed
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
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

async fn stream(
    reader: &mut Reader,
    lost: &mut Lost,
    out: &mut Printer<impl io::Write>,
    sigint: &mut tokio::signal::unix::Signal,
    sigterm: &mut tokio::signal::unix::Signal,
) -> anyhow::Result<()> {
    out.header()?;
    out.flush()?;
    let mut decode_errors = 0u64;
    let mut last_lost_check = Instant::now();
    loop {
        let stop = tokio::select! {
            () = reader.wait(DRAIN_INTERVAL) => false,
            _ = sigint.recv() => true,
            _ = sigterm.recv() => true,
        };
        let mut io_result = Ok(());
        reader.drain(|bytes| {
            if io_result.is_err() {
                return;
            }
            match event::decode(bytes) {
                Ok(ev) => io_result = out.event(&ev),
                Err(e) => {
                    decode_errors += 1;
                    if decode_errors == 1 {
                        eprintln!("netwatch: warning: undecodable record skipped: {e}");
                    }
                }
            }
        });
        io_result?;
        if stop || last_lost_check.elapsed() >= LOST_INTERVAL {
            last_lost_check = Instant::now();
            if let Some((count, total)) = lost.newly_lost()? {
                out.lost(Clock::monotonic_now(), count, total)?;
            }
        }
        out.flush()?;
        if stop {
            return Ok(());
        }
    }
}
