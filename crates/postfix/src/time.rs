//! Timestamps as syslog writes them: RFC 3164 (no year, no zone), RFC 3339 / ISO 8601, and the RFC 5424 header's.
//!
//! Everything is integer arithmetic on bytes; no calendar crate sits on the hot path.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with the UTC offset the log line was written with, so it can be rendered back as written.
/// Serialised as its RFC 3339 text (microseconds when there is a fraction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Microseconds since 1970-01-01T00:00:00Z.
    pub unix_micros: i64,
    /// Offset from UTC in minutes of the wall-clock time in the line (0 for `Z` and for RFC 3164 lines read as UTC).
    pub offset_minutes: i16,
}

impl Timestamp {
    /// Whole seconds since the epoch (floor).
    pub fn unix_seconds(&self) -> i64 {
        self.unix_micros.div_euclid(1_000_000)
    }

    /// Builds a timestamp from whole seconds, in UTC.
    pub fn from_unix_seconds(secs: i64) -> Self {
        Timestamp {
            unix_micros: secs * 1_000_000,
            offset_minutes: 0,
        }
    }

    /// RFC 3339 with microseconds when the time has a fraction, in the line's own offset.
    pub fn to_rfc3339(&self) -> String {
        let mut out = String::with_capacity(32);
        self.write_rfc3339(&mut out);
        out
    }

    /// Appends the RFC 3339 form to `out` (no allocation beyond the string's growth).
    pub fn write_rfc3339(&self, out: &mut String) {
        let local = self.unix_micros + i64::from(self.offset_minutes) * 60_000_000;
        let secs = local.div_euclid(1_000_000);
        let micros = local.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        push_num(out, y as u32, 4);
        out.push('-');
        push_num(out, m, 2);
        out.push('-');
        push_num(out, d, 2);
        out.push('T');
        push_num(out, sod / 3600, 2);
        out.push(':');
        push_num(out, sod / 60 % 60, 2);
        out.push(':');
        push_num(out, sod % 60, 2);
        if micros != 0 {
            out.push('.');
            push_num(out, micros, 6);
        }
        if self.offset_minutes == 0 {
            out.push('Z');
        } else {
            let off = self.offset_minutes.unsigned_abs() as u32;
            out.push(if self.offset_minutes < 0 { '-' } else { '+' });
            push_num(out, off / 60, 2);
            out.push(':');
            push_num(out, off % 60, 2);
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        match parse_rfc3339(text.as_bytes()) {
            Some((t, used)) if used == text.len() => Ok(t),
            _ => Err(serde::de::Error::custom(format!(
                "not an RFC 3339 time: {text}"
            ))),
        }
    }
}

fn push_num(out: &mut String, mut v: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut i = buf.len();
    while v > 0 && i > 0 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let start = (buf.len() - width).min(i);
    // All bytes are ASCII digits, so this cannot fail.
    out.push_str(std::str::from_utf8(&buf[start..]).unwrap_or("0"));
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
pub fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

#[inline]
fn digit(b: u8) -> Option<u32> {
    b.is_ascii_digit().then(|| u32::from(b - b'0'))
}

#[inline]
fn two(s: &[u8], at: usize) -> Option<u32> {
    Some(digit(*s.get(at)?)? * 10 + digit(*s.get(at + 1)?)?)
}

/// Month number of a three-letter English abbreviation, as syslog writes it.
#[inline]
pub fn month_number(m: &[u8]) -> Option<u32> {
    Some(match m {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
}

/// An RFC 3164 stamp without its year: month, day and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct YearlessStamp {
    pub month: u32,
    pub day: u32,
    pub second_of_day: u32,
}

/// Parses `Nov  8 22:32:50` / `Nov 08 22:32:50` / `Nov 8 22:32:50` at the start of `s`;
/// returns the stamp and the number of bytes consumed.
pub fn parse_rfc3164(s: &[u8]) -> Option<(YearlessStamp, usize)> {
    let month = month_number(s.get(..3)?)?;
    if *s.get(3)? != b' ' {
        return None;
    }
    let mut i = 4;
    if s.get(i) == Some(&b' ') {
        i += 1;
    }
    let mut day = digit(*s.get(i)?)?;
    i += 1;
    if let Some(d) = s.get(i).and_then(|&b| digit(b)) {
        day = day * 10 + d;
        i += 1;
    }
    if *s.get(i)? != b' ' || day == 0 || day > 31 {
        return None;
    }
    i += 1;
    let (h, m, sec) = (two(s, i)?, two(s, i + 3)?, two(s, i + 6)?);
    if s[i + 2] != b':' || s[i + 5] != b':' || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    Some((
        YearlessStamp {
            month,
            day,
            second_of_day: h * 3600 + m * 60 + sec.min(59),
        },
        i + 8,
    ))
}

/// Picks the year of a year-less stamp relative to a reference time: the latest year in which the stamp is not more than
/// `future_slack_secs` after the reference. Syslog lines are never written in the future, so a December line read on
/// January 2 belongs to the previous year, and a January 1 line read on December 31 (clock skew, time zones) within the
/// slack still belongs to the next year.
pub fn infer_year(
    stamp: YearlessStamp,
    reference_unix: i64,
    offset_minutes: i16,
    future_slack_secs: i64,
) -> Option<i64> {
    let (ref_year, _, _) =
        civil_from_days((reference_unix + i64::from(offset_minutes) * 60).div_euclid(86_400));
    // Try next year first (a year boundary just crossed within the slack), then this year, then earlier years; Feb 29
    // needs a leap year, so look back up to 8 years.
    for year in (ref_year - 8..=ref_year + 1).rev() {
        if stamp.day > days_in_month(year, stamp.month) {
            continue;
        }
        let local =
            days_from_civil(year, stamp.month, stamp.day) * 86_400 + i64::from(stamp.second_of_day);
        let utc = local - i64::from(offset_minutes) * 60;
        if utc <= reference_unix + future_slack_secs {
            return Some(utc);
        }
    }
    None
}

/// Parses an RFC 3339 / ISO 8601 stamp (`2024-03-22T08:00:01.000+00:00`, `2020-01-30T06:26:05.404714+09:00`,
/// `2026-11-28T22:44:42Z`, also with a space instead of `T`) at the start of `s`; returns it and the bytes consumed.
/// A stamp without an offset is read as UTC.
pub fn parse_rfc3339(s: &[u8]) -> Option<(Timestamp, usize)> {
    let year = two(s, 0)? * 100 + two(s, 2)?;
    if *s.get(4)? != b'-' || *s.get(7)? != b'-' || !matches!(*s.get(10)?, b'T' | b' ') {
        return None;
    }
    let (mo, d) = (two(s, 5)?, two(s, 8)?);
    let (h, mi, sec) = (two(s, 11)?, two(s, 14)?, two(s, 17)?);
    if s[13] != b':'
        || s[16] != b':'
        || !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(year as i32, mo)
    {
        return None;
    }
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut micros: i64 = 0;
    if s.get(i) == Some(&b'.') || s.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        let mut scale = 100_000;
        while let Some(dg) = s.get(i).and_then(|&b| digit(b)) {
            micros += i64::from(dg) * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let mut offset: i32 = 0;
    match s.get(i) {
        Some(b'Z' | b'z') => i += 1,
        Some(&sign @ (b'+' | b'-')) => {
            let oh = two(s, i + 1)?;
            let (om, len) = if s.get(i + 3) == Some(&b':') {
                (two(s, i + 4)?, 6)
            } else {
                (two(s, i + 3)?, 5)
            };
            if oh > 23 || om > 59 {
                return None;
            }
            offset = (oh * 60 + om) as i32 * if sign == b'-' { -1 } else { 1 };
            i += len;
        }
        _ => {}
    }
    let local =
        days_from_civil(year as i32, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec.min(59));
    let utc = local - i64::from(offset) * 60;
    Some((
        Timestamp {
            unix_micros: utc * 1_000_000 + micros,
            offset_minutes: offset as i16,
        },
        i,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for z in (-200_000..200_000).step_by(37) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn rfc3339_with_fraction_and_offset() {
        let (t, n) = parse_rfc3339(b"2020-01-30T06:26:05.404714+09:00 mail").unwrap();
        assert_eq!(n, 32);
        assert_eq!(t.to_rfc3339(), "2020-01-30T06:26:05.404714+09:00");
        assert_eq!(t.unix_seconds(), 1_580_333_165);
        let (t, _) = parse_rfc3339(b"2026-11-28T22:44:42Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-28T22:44:42Z");
        assert!(parse_rfc3339(b"2026-02-30T00:00:00Z").is_none());
    }

    #[test]
    fn rfc3164_both_paddings() {
        let (a, n) = parse_rfc3164(b"Nov  8 22:32:50 host").unwrap();
        let (b, _) = parse_rfc3164(b"Nov 08 22:32:50 host").unwrap();
        let (c, _) = parse_rfc3164(b"Nov 8 22:32:50 host").unwrap();
        assert_eq!(n, 15);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert!(parse_rfc3164(b"Foo 1 00:00:00").is_none());
        assert!(parse_rfc3164(b"Jan: 1 00:00:00").is_none());
    }

    #[test]
    fn year_rollover_dec_31_to_jan_1() {
        // Reference: 2027-01-01T00:00:30Z. A Dec 31 line belongs to 2026, a Jan 1 line to 2027.
        let reference = days_from_civil(2027, 1, 1) * 86_400 + 30;
        let dec = YearlessStamp {
            month: 12,
            day: 31,
            second_of_day: 86_399,
        };
        let jan = YearlessStamp {
            month: 1,
            day: 1,
            second_of_day: 10,
        };
        assert_eq!(
            civil_from_days(infer_year(dec, reference, 0, 86_400).unwrap() / 86_400).0,
            2026
        );
        assert_eq!(
            civil_from_days(infer_year(jan, reference, 0, 86_400).unwrap() / 86_400).0,
            2027
        );
        // Reference late on Dec 31: a Jan 1 line just after midnight (skewed clock) is next year, not last January.
        let reference = days_from_civil(2026, 12, 31) * 86_400 + 86_000;
        assert_eq!(
            civil_from_days(infer_year(jan, reference, 0, 86_400).unwrap() / 86_400).0,
            2027
        );
        // Feb 29 picks the latest leap year.
        let feb29 = YearlessStamp {
            month: 2,
            day: 29,
            second_of_day: 0,
        };
        assert_eq!(
            civil_from_days(infer_year(feb29, reference, 0, 86_400).unwrap() / 86_400).0,
            2024
        );
    }
}
