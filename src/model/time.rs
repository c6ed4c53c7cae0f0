//! Calendar arithmetic for the model's time values, with no dependency on a date library.
//!
//! The model stores instants as microseconds since 1970-01-01 00:00:00 (UTC for `TimestampTz`, wall
//! clock for `Timestamp`) and dates as days since 1970-01-01, in the proleptic Gregorian calendar. The
//! conversions here are exact for every year PostgreSQL or MySQL/MariaDB can store (PostgreSQL: 4713 BC
//! to 5874897 AD for a date, 294276 AD for a timestamp; years <= 0 are astronomical, so 1 BC is year 0).

/// Microseconds in one day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (year, month, day) of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether (year, month, day) is a real calendar date.
pub fn is_valid_date(year: i64, month: u32, day: u32) -> bool {
    if !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let len = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= len
}

/// Formats a date as ISO 8601 `YYYY-MM-DD` (years outside 0..=9999 get a sign and more digits).
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{}-{m:02}-{d:02}", format_year(y))
}

fn format_year(y: i64) -> String {
    if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else if y < 0 {
        format!("-{:04}", -y)
    } else {
        format!("+{y}")
    }
}

/// Formats a time of day or duration in microseconds as `[-]HH:MM:SS[.ffffff]`; hours may exceed 23.
pub fn format_time(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let secs = m / 1_000_000;
    let frac = m % 1_000_000;
    let (h, mi, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if frac == 0 {
        format!("{sign}{h:02}:{mi:02}:{s:02}")
    } else {
        format!("{sign}{h:02}:{mi:02}:{s:02}.{}", trim_frac(frac))
    }
}

/// An interval as PostgreSQL writes it with `IntervalStyle = postgres` (its default): years and
/// months from the month count, days, then the time part (`1 year 2 mons 3 days 04:05:06.789`,
/// `-1 years -2 mons +3 days -04:05:06`, `00:00:00`). A part that is zero is left out; a part after
/// a negative one shows its `+`; the time part is written when it is not zero or nothing else is.
pub fn format_interval(months: i64, days: i64, micros: i64) -> String {
    let mut out = String::new();
    let (mut is_zero, mut is_before) = (true, false);
    for (value, unit) in [(months / 12, "year"), (months % 12, "mon"), (days, "day")] {
        if value == 0 {
            continue;
        }
        out.push_str(&format!(
            "{}{}{value} {unit}{}",
            if is_zero { "" } else { " " },
            if is_before && value > 0 { "+" } else { "" },
            if value != 1 { "s" } else { "" }
        ));
        is_before = value < 0;
        is_zero = false;
    }
    if is_zero || micros != 0 {
        let sign = if micros < 0 {
            "-"
        } else if is_before {
            "+"
        } else {
            ""
        };
        let t = format_time(micros.saturating_abs());
        out.push_str(&format!("{}{sign}{t}", if is_zero { "" } else { " " }));
    }
    out
}

fn trim_frac(frac: u64) -> String {
    let s = format!("{frac:06}");
    s.trim_end_matches('0').to_string()
}

/// Formats microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS[.ffffff]`.
pub fn format_timestamp(micros: i64) -> String {
    let days = micros.div_euclid(MICROS_PER_DAY);
    let tod = micros.rem_euclid(MICROS_PER_DAY);
    format!("{}T{}", format_date(days), format_time(tod))
}

/// Parses `YYYY-MM-DD` into days since the epoch.
pub fn parse_date(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let mut it = body.splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let d: u32 = it.next()?.parse().ok()?;
    let y = if neg { -y } else { y };
    (y.abs() <= MAX_YEAR && is_valid_date(y, m, d)).then(|| days_from_civil(y, m, d))
}

/// The largest year (either side of year 0) a date text may name: past what any engine stores
/// (a PostgreSQL `date` to 5874897 AD and 4713 BC, a timestamp to 294276 AD, MySQL/MariaDB 0 or
/// 1000 to 9999), and far inside what [`days_from_civil`] computes without overflow.
const MAX_YEAR: i64 = 10_000_000;

/// Parses `[-]H+:MM:SS[.f{1,6}]` into microseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (hms, frac) = match body.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (body, None),
    };
    let mut it = hms.splitn(3, ':');
    let h: i64 = it.next()?.parse().ok()?;
    let mi: i64 = it.next()?.parse().ok()?;
    let sec: i64 = it.next()?.parse().ok()?;
    if !(0..60).contains(&mi) || !(0..=60).contains(&sec) || h < 0 {
        return None;
    }
    let f = match frac {
        Some(f) if !f.is_empty() && f.len() <= 6 && f.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{f:0<6}").parse::<i64>().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let total = h
        .checked_mul(3_600_000_000)?
        .checked_add(mi * 60_000_000 + sec * 1_000_000 + f)?;
    Some(if neg { -total } else { total })
}

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.ffffff]` into microseconds since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let split = s.rfind(['T', ' '])?;
    let days = parse_date(&s[..split])?;
    let tod = parse_time(&s[split + 1..])?;
    if !(0..MICROS_PER_DAY).contains(&tod) {
        return None;
    }
    days.checked_mul(MICROS_PER_DAY)?.checked_add(tod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Found by the pgoutput fuzz target: a year of 19 digits overflowed `days_from_civil` (a
    /// panic with overflow checks, a wrong date without). The bound keeps every date PostgreSQL
    /// writes (`type_fidelity_catalog` sends its last one).
    #[test]
    fn fuzz_crash_a_date_with_a_huge_year_is_not_a_date() {
        assert_eq!(parse_date("1000000000000002024-05-01"), None);
        assert_eq!(
            parse_timestamp("1000000000000002024-05-01 12:34:56.789"),
            None
        );
        assert_eq!(parse_date("-9223372036854775807-01-01"), None);
        assert_eq!(parse_date("10000001-01-01"), None);
        // PostgreSQL's last date and last timestamp.
        assert_eq!(
            parse_date("5874897-12-31"),
            Some(days_from_civil(5_874_897, 12, 31))
        );
        assert_eq!(
            parse_date("294276-12-31"),
            Some(days_from_civil(294_276, 12, 31))
        );
        // Past what a timestamp's microseconds hold: refused, not wrapped.
        assert_eq!(parse_timestamp("999999-01-01 00:00:00"), None);
    }

    /// PostgreSQL 15's own output for each (`SELECT '…'::interval`).
    #[test]
    fn intervals_as_postgresql_writes_them() {
        let h = 3_600_000_000;
        assert_eq!(
            format_interval(14, 3, 4 * h + 5 * 60_000_000 + 6_789_000),
            "1 year 2 mons 3 days 04:05:06.789"
        );
        assert_eq!(format_interval(0, 0, -1_000_000), "-00:00:01");
        assert_eq!(format_interval(0, 0, 0), "00:00:00");
        assert_eq!(format_interval(1, 1, 0), "1 mon 1 day");
        assert_eq!(format_interval(24, 0, 0), "2 years");
        assert_eq!(
            format_interval(-14, 3, -(4 * h + 5 * 60_000_000 + 6_000_000)),
            "-1 years -2 mons +3 days -04:05:06"
        );
        assert_eq!(format_interval(0, -1, h), "-1 days +01:00:00");
        assert_eq!(format_interval(0, 0, 100 * h + 1), "100:00:00.000001");
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(format_date(days_from_civil(-4713, 11, 24)), "-4713-11-24");
        assert_eq!(format_timestamp(-1), "1969-12-31T23:59:59.999999");
        assert_eq!(
            format_time(-(838 * 3600 + 59 * 60 + 59) * 1_000_000),
            "-838:59:59"
        );
        assert_eq!(parse_time("-838:59:59.5"), Some(-3_020_399_500_000));
        assert_eq!(
            parse_timestamp("2024-02-29 12:00:00.25"),
            Some(1_709_208_000_250_000)
        );
        assert_eq!(parse_date("2023-02-29"), None);
    }

    proptest! {
        #[test]
        fn days_round_trip(d in -2_500_000i64..110_000_000) {
            let (y, m, dd) = civil_from_days(d);
            prop_assert!(is_valid_date(y, m, dd));
            prop_assert_eq!(days_from_civil(y, m, dd), d);
            prop_assert_eq!(parse_date(&format_date(d)), Some(d));
        }

        #[test]
        fn timestamp_round_trip(us in -200_000_000_000_000_000i64..9_000_000_000_000_000_000) {
            prop_assert_eq!(parse_timestamp(&format_timestamp(us)), Some(us));
        }
    }
}
