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

/// Central Europe as a POSIX rule (no tz database needed): +01:00 in winter,
/// +02:00 from the last Sunday of March, 02:00, to the last Sunday of October, 03:00.
fn cet() -> TimeZone {
    TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").unwrap()
}

/// The TIME column of the kernel stamp 0 with the wall clock at `epoch_ns`, both
/// ways: the one-off spelling and the stream's.
fn column(format: TimeFormat, zone: TimeZone, epoch_ns: i128) -> String {
    let clock = Clock::with_offset(epoch_ns);
    let col = TimeColumn::new(format, zone, 0);
    let one_off = col.spell(&clock, 0).unwrap_or_default();
    let mut stamps = Stamps::with_column(clock, col);
    let mut out = Vec::new();
    stamps.write_time(0, &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), one_off, "{format:?}");
    one_off
}

#[test]
fn time_column_in_a_fixed_zone() {
    use TimeFormat::*;
    // 2026-11-23T05:47:24.123456789Z: winter, CET is +01:00.
    let winter = 1_795_412_844_123_456_789i128;
    assert_eq!(column(Local, cet(), winter), "06:47:24.123");
    assert_eq!(column(Utc, cet(), winter), "05:47:24.123");
    assert_eq!(column(Iso, cet(), winter), "2026-11-23T06:47:24.123+01:00");
    assert_eq!(column(None, cet(), winter), "");
    // 2026-07-01T22:30:00.999Z: summer (+02:00), and the next day locally.
    let summer = 1_782_945_000_999_000_000i128;
    assert_eq!(column(Local, cet(), summer), "00:30:00.999");
    assert_eq!(column(Iso, cet(), summer), "2026-07-02T00:30:00.999+02:00");
    // West of Greenwich, and a half-hour zone.
    let ny = TimeZone::posix("EST5EDT,M3.2.0,M11.1.0").unwrap();
    assert_eq!(column(Iso, ny, winter), "2026-11-23T00:47:24.123-05:00");
    let india = TimeZone::posix("IST-5:30").unwrap();
    assert_eq!(column(Local, india.clone(), winter), "11:17:24.123");
    assert_eq!(column(Iso, india, winter), "2026-11-23T11:17:24.123+05:30");
    assert_eq!(
        column(Iso, TimeZone::UTC, winter),
        "2026-11-23T05:47:24.123+00:00"
    );
    // Before the epoch: milliseconds count up from the second before.
    assert_eq!(column(Utc, cet(), -1_500_000_001), "23:59:58.499");
}

#[test]
fn time_column_follows_daylight_saving_time_within_a_run() {
    // The spring change in Central Europe: 2026-03-29T01:00:00Z is 03:00 CEST.
    let change = 1_774_746_000i128 * NS_PER_SEC;
    let col = TimeColumn::new(TimeFormat::Iso, cet(), 0);
    let clock = Clock::with_offset(change - 2 * NS_PER_SEC);
    let mut stamps = Stamps::with_column(clock, col.clone());
    let mut spelled = Vec::new();
    for ktime in [
        0,
        1_000_000_000,
        2_000_000_000,
        3_000_000_000,
        1_500_000_000,
    ] {
        let mut out = Vec::new();
        stamps.write_time(ktime, &mut out);
        let out = String::from_utf8(out).unwrap();
        assert_eq!(Some(&out), col.spell(&clock, ktime).as_ref());
        spelled.push(out);
    }
    assert_eq!(
        spelled,
        [
            "2026-03-29T01:59:58.000+01:00",
            "2026-03-29T01:59:59.000+01:00",
            "2026-03-29T03:00:00.000+02:00",
            "2026-03-29T03:00:01.000+02:00",
            "2026-03-29T01:59:59.500+01:00",
        ]
    );
}

#[test]
fn relative_time_counts_from_the_origin() {
    let origin = 5_000_000_000u64;
    let col = TimeColumn::new(TimeFormat::Relative, TimeZone::UTC, origin);
    let clock = Clock::with_offset(1_795_412_844_000_000_000);
    let mut stamps = Stamps::with_column(clock, col.clone());
    for (ktime, want) in [
        (origin, "0.000"),
        (origin + 12_345_678_901, "12.345"),
        (origin + 999_999, "0.000"),
        (origin + 86_400_000_000_000, "86400.000"),
        (origin - 2_500_000, "-0.002"),
    ] {
        let mut out = Vec::new();
        stamps.write_time(ktime, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), want);
        assert_eq!(col.spell(&clock, ktime).unwrap(), want);
    }
    assert_eq!(col.heading(), Some("TIME(s)"));
    let none = TimeColumn::new(TimeFormat::None, TimeZone::UTC, 0);
    assert_eq!((none.heading(), none.spell(&clock, 1)), (None, None));
}

#[test]
fn widths_are_what_the_formats_print() {
    let clock = Clock::with_offset(1_795_412_844_123_456_789);
    for format in [TimeFormat::Local, TimeFormat::Utc, TimeFormat::Iso] {
        let col = TimeColumn::new(format, cet(), 0);
        assert_eq!(
            col.spell(&clock, 0).unwrap().len(),
            col.width(),
            "{format:?}"
        );
    }
}
