//! Turning the kernel's CLOCK_MONOTONIC stamps into wall-clock time.

use std::fmt::Write as _;

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

/// UTC calendar fields from epoch nanoseconds.
struct Utc {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
}

fn utc(epoch_ns: i128) -> Utc {
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
    Utc {
        year,
        month,
        day,
        hour: sod / 3600,
        min: sod / 60 % 60,
        sec: sod % 60,
        nanos,
    }
}

fn write_hms(out: &mut String, t: &Utc) {
    // Writing into a String cannot fail.
    let _ = write!(out, "{:02}:{:02}:{:02}", t.hour, t.min, t.sec);
}

fn write_date_time(out: &mut String, t: &Utc) {
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.min, t.sec
    );
}

/// `HH:MM:SS` (UTC), the bcc tools' TIME column.
pub fn hms(epoch_ns: i128) -> String {
    let mut s = String::new();
    write_hms(&mut s, &utc(epoch_ns));
    s
}

/// RFC 3339 with nanoseconds, UTC: `2026-11-23T05:47:24.123456789Z`.
pub fn rfc3339(epoch_ns: i128) -> String {
    let t = utc(epoch_ns);
    let mut s = String::new();
    write_date_time(&mut s, &t);
    let _ = write!(s, ".{:09}Z", t.nanos);
    s
}

/// The wall-clock times of a stream of kernel stamps, spelled as [`hms`] and
/// [`rfc3339`] do, with what changes once a second formatted once a second: a storm's
/// stamps cost a copy and nine digits each.
#[derive(Debug)]
pub struct Stamps {
    clock: Clock,
    /// The second since the epoch that `hms` and `date_time` spell.
    second: Option<i64>,
    hms: String,
    /// RFC 3339 without the fraction: `2026-11-23T05:47:24`.
    date_time: String,
}

impl Stamps {
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            second: None,
            hms: String::new(),
            date_time: String::new(),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Make the fields spell `ktime_ns`'s second; returns its nanoseconds.
    fn at(&mut self, ktime_ns: u64) -> u32 {
        let epoch_ns = self.clock.wall_ns(ktime_ns);
        let second = epoch_ns.div_euclid(NS_PER_SEC) as i64;
        if self.second != Some(second) {
            let t = utc(i128::from(second) * NS_PER_SEC);
            self.hms.clear();
            write_hms(&mut self.hms, &t);
            self.date_time.clear();
            write_date_time(&mut self.date_time, &t);
            self.second = Some(second);
        }
        epoch_ns.rem_euclid(NS_PER_SEC) as u32
    }

    /// Append [`hms`] of the kernel stamp `ktime_ns`.
    pub fn write_hms(&mut self, ktime_ns: u64, out: &mut Vec<u8>) {
        self.at(ktime_ns);
        out.extend_from_slice(self.hms.as_bytes());
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // 2026-11-23T05:47:24.5Z
        let t = 1_795_412_844_500_000_000i128;
        assert_eq!(rfc3339(t), "2026-11-23T05:47:24.500000000Z");
        assert_eq!(hms(t), "05:47:24");
        // Leap day.
        assert_eq!(
            rfc3339(1_709_208_000_000_000_000),
            "2024-02-29T12:00:00.000000000Z"
        );
    }

    #[test]
    fn stamps_spell_every_instant_as_the_one_off_functions_do() {
        let offset = 1_795_412_844_000_000_000i128;
        let mut stamps = Stamps::new(Clock::with_offset(offset));
        // Across second boundaries, forwards and back (CPUs' records interleave).
        let ktimes = [0, 1, 999_999_999, 1_000_000_000, 5, 86_400_000_000_123, 7];
        for ktime in ktimes.into_iter().chain((0..5000).map(|i| i * 999_983)) {
            let mut out = Vec::new();
            stamps.write_rfc3339(ktime, &mut out);
            assert_eq!(out, rfc3339(offset + i128::from(ktime)).as_bytes());
            out.clear();
            stamps.write_hms(ktime, &mut out);
            assert_eq!(out, hms(offset + i128::from(ktime)).as_bytes());
        }
        // Before the epoch (a clock set far back).
        let mut stamps = Stamps::new(Clock::with_offset(-1_500_000_001));
        let mut out = Vec::new();
        stamps.write_rfc3339(0, &mut out);
        assert_eq!(out, rfc3339(-1_500_000_001).as_bytes());
        assert_eq!(out, b"1969-12-31T23:59:58.499999999Z");
    }

    #[test]
    fn wall_clock_adds_the_offset() {
        let c = Clock::with_offset(1_000);
        assert_eq!(c.wall_ns(5), 1_005);
    }
}
