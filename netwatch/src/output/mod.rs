//! Printing events: columns for people (`text`), NDJSON for machines (`json`).
//!
//! Both write into one buffered stdout that the reader flushes after each drain of
//! the ring buffer, so a burst costs one write(2), and a quiet stream is still live.

pub mod color;
mod json;
mod line;
pub mod sink;
mod text;

use std::io::{self, Write};

use netwatch_common::EventKind;

use self::line::Line;
use crate::{
    cgroup::Cgroups,
    clock::{Clock, Stamps, TimeColumn},
    diagnose::{Class, Diagnosis, Process},
    event::Event,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Facts about the whole run, for the summary.
#[derive(Debug, Default)]
pub struct RunStats {
    /// Records the kernel could not queue, per kind.
    pub lost: Vec<(EventKind, u64)>,
    /// Of the lost exit records, those the kernel kept (LOST_EXITS) and netwatch read.
    pub exits_recovered: u64,
    /// Runs of each kernel program the kernel skipped (another BPF program was running
    /// on that CPU), programs with none left out.
    pub missed: Vec<(&'static str, u64)>,
    /// PROC_COUNTS entries left at the end (processes still alive with errors).
    pub proc_counts_entries: usize,
    /// WATCHED entries at the end (watched processes still alive).
    pub watched_entries: usize,
    /// Exited processes left out of the summary to bound memory.
    pub evicted: u64,
    /// A summary while tracing goes on (SIGUSR1): the kernel's counts of the lost
    /// failures of running processes are added when they exit, or at the end.
    pub so_far: bool,
}

pub struct Printer<W: Write> {
    /// Resolves the cgroup ids events carry.
    cgroups: Cgroups,
    out: W,
    format: Format,
    stamps: Stamps,
    /// The event being printed.
    line: Line,
    /// Text: errno names and diagnoses in colour (`--color`).
    color: bool,
}

impl<W: Write> Printer<W> {
    pub fn new(out: W, format: Format, clock: Clock) -> Self {
        Self {
            out,
            format,
            stamps: Stamps::new(clock),
            cgroups: Cgroups::new(),
            line: Line::new(),
            color: false,
        }
    }

    /// The text output's TIME column (`-T`); UTC `HH:MM:SS.mmm` unless given.
    #[must_use]
    pub fn with_time(mut self, column: TimeColumn) -> Self {
        self.stamps = Stamps::with_column(*self.stamps.clock(), column);
        self
    }

    /// Colour in the text output (see [`color::enabled`]).
    #[must_use]
    pub fn with_color(mut self, on: bool) -> Self {
        self.color = on;
        self
    }

    pub fn header(&mut self) -> io::Result<()> {
        match self.format {
            Format::Text => text::header(&mut self.out, self.stamps.column()),
            Format::Json => Ok(()),
        }
    }

    pub fn event(&mut self, ev: &Event) -> io::Result<()> {
        let place = self.cgroups.place(ev.cgroup_id);
        self.line.clear();
        match self.format {
            Format::Text => text::event(&mut self.line, &mut self.stamps, self.color, ev, place),
            Format::Json => json::event(&mut self.line, &mut self.stamps, ev, place),
        }
        self.out.write_all(self.line.as_bytes())
    }

    pub fn diagnosis(&mut self, d: &Diagnosis) -> io::Result<()> {
        match self.format {
            Format::Text => text::diagnosis(&mut self.out, &mut self.stamps, self.color, d),
            Format::Json => json::diagnosis(&mut self.out, self.stamps.clock(), d),
        }
    }

    /// The per-process table printed at exit (and on SIGUSR1).
    pub fn summary(&mut self, procs: &[&Process], stats: &RunStats) -> io::Result<()> {
        match self.format {
            Format::Text => text::summary(&mut self.out, procs, stats),
            Format::Json => json::summary(&mut self.out, procs, stats),
        }
    }

    /// `count` more records were dropped by the kernel (ring buffer full), `total` so far.
    pub fn lost(&mut self, ktime_ns: u64, count: u64, total: u64) -> io::Result<()> {
        match self.format {
            Format::Text => text::lost(&mut self.out, &mut self.stamps, ktime_ns, count, total),
            Format::Json => json::lost(&mut self.out, self.stamps.clock(), ktime_ns, count, total),
        }
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The writer, e.g. to reopen an output file.
    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.out
    }

    #[cfg(test)]
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// An exec's DETAIL, as execsnoop's ARGS: the executable, then argv after argv[0].
pub(crate) fn exec_detail(x: &crate::event::process::Exec) -> String {
    match &x.command {
        Some(c) => std::iter::once(c.exe.as_str())
            .chain(c.argv.iter().skip(1).map(String::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        None => "(gone before its command line was read)".to_owned(),
    }
}

/// Error counts of one class over all syscall families.
pub fn class_total(p: &Process, class: impl Fn(Class) -> bool) -> u64 {
    p.counts
        .iter()
        .filter(|((c, _), _)| class(*c))
        .map(|(_, n)| *n)
        .sum()
}

#[cfg(test)]
mod tests;
