//! Turning the kernel's CLOCK_MONOTONIC stamps into wall-clock time: JSON's UTC
//! `time`, and the text output's TIME column in the format `-T` chose.
//!
//! Local time comes from jiff rather than libc's localtime_r: jiff reads `TZ` as the C
//! library does (an IANA name, `:name`, a path to a TZif file, a POSIX rule such as
//! `CET-1CEST,M3.5.0,M10.5.0/3`; an empty `TZ` is UTC; unset, /etc/localtime), against
//! the system's tz database, and a zone it cannot find is UTC, as in glibc. Unlike
//! localtime_r it takes the zone as a value, so the zone is looked up once at start-up
//! (as the clock offset is; a change of /etc/localtime while netwatch runs is not
//! followed, daylight saving time is), the stream formats without touching the
//! process's environment or a libc lock, and the tests pass zones explicitly.

use std::fmt::Write as _;

use jiff::{Timestamp, tz::TimeZone};

use crate::cli::TimeFormat;

const NS_PER_SEC: i128 = 1_000_000_000;

/// Wall clock = monotonic stamp + offset, with the offset sampled once at start-up
/// (like bcc tools; a clock step while netwatch runs is not followed).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    offset_ns: i128,
}

fn now_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid clock id and out pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl Clock {
    pub fn new() -> Self {
        let mono = now_ns(libc::CLOCK_MONOTONIC);
        let real = now_ns(libc::CLOCK_REALTIME);
        Self {
            offset_ns: real - mono,
        }
    }

    #[cfg(test)]
    pub fn with_offset(offset_ns: i128) -> Self {
        Self { offset_ns }
    }

    /// Nanoseconds since the Unix epoch.
    pub fn wall_ns(&self, ktime_ns: u64) -> i128 {
        i128::from(ktime_ns) + self.offset_ns
    }

    /// CLOCK_MONOTONIC now, in the kernel's `bpf_ktime_get_ns` scale.
    pub fn monotonic_now() -> u64 {
        now_ns(libc::CLOCK_MONOTONIC) as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The text output's TIME column (`-T`): its format, the zone of `local` and `iso`,
/// and the kernel stamp `relative` counts from.
#[derive(Clone, Debug)]
pub struct TimeColumn {
    format: TimeFormat,
    zone: TimeZone,
    origin_ns: u64,
}

impl TimeColumn {
    /// `zone` is used by `local` and `iso` (`utc` is UTC whatever it is); `origin_ns`,
    /// a kernel stamp, is second 0 of `relative`.
    pub fn new(format: TimeFormat, zone: TimeZone, origin_ns: u64) -> Self {
        let zone = match format {
            TimeFormat::Utc => TimeZone::UTC,
            _ => zone,
        };
        Self {
            format,
            zone,
            origin_ns,
        }
    }

    /// `HH:MM:SS.mmm` in UTC.
    pub fn utc() -> Self {
        Self::new(TimeFormat::Utc, TimeZone::UTC, 0)
    }

    /// The local time zone, found as the C library finds it (module documentation).
    pub fn local_zone() -> TimeZone {
        TimeZone::try_system().unwrap_or(TimeZone::UTC)
    }

    pub fn format(&self) -> TimeFormat {
        self.format
    }

    /// The column's heading (bcc's `TIME(s)` for seconds), None without the column.
    pub fn heading(&self) -> Option<&'static str> {
        match self.format {
            TimeFormat::Local | TimeFormat::Utc | TimeFormat::Iso => Some("TIME"),
            TimeFormat::Relative => Some("TIME(s)"),
            TimeFormat::None => None,
        }
    }

    /// The column's width: what it usually takes (relative times grow past it after
    /// 11 days; an offset with seconds, before 1900 in some zones, past `iso`'s).
    pub fn width(&self) -> usize {
        match self.format {
            TimeFormat::Local | TimeFormat::Utc => "HH:MM:SS.mmm".len(),
            TimeFormat::Iso => "2026-11-23T06:47:24.123+01:00".len(),
            TimeFormat::Relative => "999999.999".len(),
            TimeFormat::None => 0,
        }
    }

    /// The column's text for one stamp, through jiff's strftime (what [`Stamps`]
    /// writes by hand, once a second's fields are known); None without the column.
    pub fn spell(&self, clock: &Clock, ktime_ns: u64) -> Option<String> {
        let pattern = match self.format {
            TimeFormat::None => return None,
            TimeFormat::Relative => return Some(relative(ktime_ns, self.origin_ns)),
            TimeFormat::Local | TimeFormat::Utc => "%H:%M:%S%.3f",
            TimeFormat::Iso => "%Y-%m-%dT%H:%M:%S%.3f%:z",
        };
        let epoch_ns = clock.wall_ns(ktime_ns);
        let Ok(ts) = Timestamp::from_nanosecond(epoch_ns) else {
            // Beyond jiff's years (-9999 to 9999: a clock set absurdly): UTC.
            let t = civil(epoch_ns);
            let mut s = String::new();
            if self.format == TimeFormat::Iso {
                write_date_time(&mut s, &t);
                let _ = write!(s, ".{:03}+00:00", t.nanos / 1_000_000);
            } else {
                write_hms(&mut s, &t);
                let _ = write!(s, ".{:03}", t.nanos / 1_000_000);
            }
            return Some(s);
        };
        Some(ts.to_zoned(self.zone.clone()).strftime(pattern).to_string())
    }
}

/// Seconds from `origin_ns` to `ktime_ns`, with milliseconds (truncated): `12.345`,
/// `-0.002` for a record stamped before the origin.
fn relative(ktime_ns: u64, origin_ns: u64) -> String {
    let (sign, ns) = match ktime_ns.checked_sub(origin_ns) {
        Some(ns) => ("", ns),
        None => ("-", origin_ns - ktime_ns),
    };
    format!(
        "{sign}{}.{:03}",
        ns / 1_000_000_000,
        ns % 1_000_000_000 / 1_000_000
    )
}

/// Calendar fields from epoch nanoseconds (UTC, or local time when given the local
/// offset added).
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
}

fn civil(epoch_ns: i128) -> Civil {
    let secs = epoch_ns.div_euclid(1_000_000_000) as i64;
    let nanos = epoch_ns.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    // Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil inverse).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: sod / 3600,
        min: sod / 60 % 60,
        sec: sod % 60,
        nanos,
    }
}

fn write_hms(out: &mut String, t: &Civil) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{:02}:{:02}:{:02}", t.hour, t.min, t.sec);
}

fn write_date_time(out: &mut String, t: &Civil) {
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.min, t.sec
    );
}

/// An offset from UTC as RFC 3339 spells it, `+01:00`, `-03:30`, with `:SS` when it
/// has seconds (old local mean times), as jiff's `%:z` does.
fn write_offset(out: &mut String, seconds: i32) {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let _ = write!(out, "{sign}{:02}:{:02}", s / 3600, s / 60 % 60);
    if !s.is_multiple_of(60) {
        let _ = write!(out, ":{:02}", s % 60);
    }
}

/// `HH:MM:SS` (UTC).
pub fn hms(epoch_ns: i128) -> String {
    let mut s = String::new();
    write_hms(&mut s, &civil(epoch_ns));
    s
}

/// RFC 3339 with nanoseconds, UTC: `2026-11-23T05:47:24.123456789Z`.
pub fn rfc3339(epoch_ns: i128) -> String {
    let t = civil(epoch_ns);
    let mut s = String::new();
    write_date_time(&mut s, &t);
    let _ = write!(s, ".{:09}Z", t.nanos);
    s
}

/// The wall-clock times of a stream of kernel stamps, spelled as [`rfc3339`] and
/// [`TimeColumn::spell`] do, with what changes once a second formatted once a second:
/// a storm's stamps cost a copy and a few digits each.
#[derive(Debug)]
pub struct Stamps {
    clock: Clock,
    column: TimeColumn,
    /// The second since the epoch that `date_time` spells.
    utc_second: Option<i64>,
    /// RFC 3339 without the fraction: `2026-11-23T05:47:24`.
    date_time: String,
    /// The second since the epoch that `before_ms` and `after_ms` spell.
    column_second: Option<i64>,
    /// The TIME column up to its milliseconds (`06:47:24`, `2026-11-23T06:47:24`) and
    /// after them (`+01:00`).
    before_ms: String,
    after_ms: String,
}

impl Stamps {
    /// For JSON, and a TIME column in UTC.
    pub fn new(clock: Clock) -> Self {
        Self::with_column(clock, TimeColumn::utc())
    }

    pub fn with_column(clock: Clock, column: TimeColumn) -> Self {
        Self {
            clock,
            column,
            utc_second: None,
            date_time: String::new(),
            column_second: None,
            before_ms: String::new(),
            after_ms: String::new(),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn column(&self) -> &TimeColumn {
        &self.column
    }

    /// Make `date_time` spell `ktime_ns`'s second; returns its nanoseconds.
    fn at(&mut self, ktime_ns: u64) -> u32 {
        let epoch_ns = self.clock.wall_ns(ktime_ns);
        let second = epoch_ns.div_euclid(NS_PER_SEC) as i64;
        if self.utc_second != Some(second) {
            self.date_time.clear();
            write_date_time(&mut self.date_time, &civil(i128::from(second) * NS_PER_SEC));
            self.utc_second = Some(second);
        }
        epoch_ns.rem_euclid(NS_PER_SEC) as u32
    }

    /// Append [`rfc3339`] of the kernel stamp `ktime_ns`.
    pub fn write_rfc3339(&mut self, ktime_ns: u64, out: &mut Vec<u8>) {
        let mut nanos = self.at(ktime_ns);
        let mut fraction = *b".000000000Z";
        for digit in fraction[1..10].iter_mut().rev() {
            *digit = b'0' + (nanos % 10) as u8;
            nanos /= 10;
        }
        out.extend_from_slice(self.date_time.as_bytes());
        out.extend_from_slice(&fraction);
    }

    /// Append the TIME column's text for `ktime_ns` (nothing with `-T none`), as
    /// [`TimeColumn::spell`] spells it.
    pub fn write_time(&mut self, ktime_ns: u64, out: &mut Vec<u8>) {
        let format = self.column.format;
        if format == TimeFormat::None {
            return;
        }
        if format == TimeFormat::Relative {
            let origin = self.column.origin_ns;
            let ns = match ktime_ns.checked_sub(origin) {
                Some(ns) => ns,
                None => {
                    out.push(b'-');
                    origin - ktime_ns
                }
            };
            out.extend_from_slice(itoa::Buffer::new().format(ns / 1_000_000_000).as_bytes());
            millis(out, (ns % 1_000_000_000) as u32);
            return;
        }
        let epoch_ns = self.clock.wall_ns(ktime_ns);
        let second = epoch_ns.div_euclid(NS_PER_SEC) as i64;
        if self.column_second != Some(second) {
            self.spell_second(second);
        }
        out.extend_from_slice(self.before_ms.as_bytes());
        millis(out, epoch_ns.rem_euclid(NS_PER_SEC) as u32);
        out.extend_from_slice(self.after_ms.as_bytes());
    }

    /// The fields of `second` in the column's zone.
    fn spell_second(&mut self, second: i64) {
        self.before_ms.clear();
        self.after_ms.clear();
        self.column_second = Some(second);
        // Beyond jiff's years: UTC, as spell() falls back to.
        let offset =
            Timestamp::from_second(second).map_or(0, |ts| self.column.zone.to_offset(ts).seconds());
        let t = civil((i128::from(second) + i128::from(offset)) * NS_PER_SEC);
        match self.column.format {
            TimeFormat::Iso => {
                write_date_time(&mut self.before_ms, &t);
                write_offset(&mut self.after_ms, offset);
            }
            _ => write_hms(&mut self.before_ms, &t),
        }
    }
}

/// `.mmm` of a second's nanoseconds, truncated.
fn millis(out: &mut Vec<u8>, nanos: u32) {
    let ms = nanos / 1_000_000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
    ]);
}

#[cfg(test)]
mod tests;
