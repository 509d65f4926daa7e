//! ISO/IEC 8601 date-times as EXT-X-PROGRAM-DATE-TIME and EXT-X-DATERANGE carry them, read as
//! seconds since 1970-01-01T00:00:00Z.

/// `YYYY-MM-DDThh:mm:ss[.s+](Z|±hh[:mm]|±hhmm)`: the extended format with seconds and a time
/// zone. Returns seconds since the Unix epoch.
pub(super) fn parse(s: &str) -> Result<f64, String> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize, what: &str| -> Result<i64, String> {
        let part = b
            .get(from..from + len)
            .filter(|p| p.iter().all(u8::is_ascii_digit))
            .ok_or_else(|| format!("{s:?}: expected {len} digits of {what} at offset {from}"))?;
        Ok(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, c: u8| -> Result<(), String> {
        if b.get(at) == Some(&c) {
            Ok(())
        } else {
            Err(format!("{s:?}: expected '{}' at offset {at}", c as char))
        }
    };
    let year = num(0, 4, "year")?;
    sep(4, b'-')?;
    let month = num(5, 2, "month")?;
    sep(7, b'-')?;
    let day = num(8, 2, "day")?;
    sep(10, b'T')?;
    let hour = num(11, 2, "hour")?;
    sep(13, b':')?;
    let minute = num(14, 2, "minute")?;
    sep(16, b':')?;
    let second = num(17, 2, "second")?;
    if !(1..=12).contains(&month) {
        return Err(format!("{s:?}: month {month} is not 1-12"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(format!("{s:?}: day {day} is not in {year:04}-{month:02}"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!("{s:?}: time of day out of range"));
    }
    let mut i = 19;
    let mut fraction = 0.0;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!("{s:?}: '.' without fractional digits"));
        }
        fraction = s[i..i + 1 + digits].parse::<f64>().unwrap_or(0.0);
        i += 1 + digits;
    }
    let offset = match b.get(i) {
        Some(b'Z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let hours = num(i + 1, 2, "time zone hours")?;
            let (minutes, end) = match b.get(i + 3) {
                None => (0, i + 3),
                Some(b':') => (num(i + 4, 2, "time zone minutes")?, i + 6),
                Some(_) => (num(i + 3, 2, "time zone minutes")?, i + 5),
            };
            if end != b.len() {
                return Err(format!("{s:?}: unexpected text after the time zone"));
            }
            if hours > 23 || minutes > 59 {
                return Err(format!("{s:?}: time zone offset out of range"));
            }
            let v = hours * 3600 + minutes * 60;
            if sign == b'-' { -v } else { v }
        }
        None => return Err(format!("{s:?}: no time zone (Z or ±hh:mm)")),
        Some(_) => return Err(format!("{s:?}: unexpected text at offset {i}")),
    };
    let days = days_from_civil(year, month, day);
    let whole = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    Ok(whole as f64 + fraction)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_the_draft_shows() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Ok(0.0));
        assert_eq!(
            parse("2019-02-14T02:13:28.106Z").map(|t| (t * 1000.0).round()),
            Ok(1_550_110_408_106.0)
        );
        // §4.4.4.6's example, eight hours east of UTC.
        let east = parse("2010-02-19T14:54:23.031+08:00").unwrap();
        let utc = parse("2010-02-19T06:54:23.031Z").unwrap();
        assert!((east - utc).abs() < 1e-6);
        assert!((parse("2010-02-19T06:54:23.031+0000").unwrap() - utc).abs() < 1e-6);
        assert!((parse("2010-02-19T01:54:23.031-05").unwrap() - utc).abs() < 1e-6);
        assert_eq!(parse("2000-02-29T00:00:00Z"), Ok(951_782_400.0));
    }

    #[test]
    fn refuses_what_is_not_a_full_date_time() {
        for bad in [
            "",
            "2019-02-14",
            "2019-02-14T02:13:28.106",
            "2019-02-14 02:13:28Z",
            "2019-02-14T02:13Z",
            "2019-13-14T02:13:28Z",
            "2019-02-29T02:13:28Z",
            "2019-02-14T24:00:00Z",
            "2019-02-14T02:13:28.Z",
            "2019-02-14T02:13:28ZZ",
            "2019-02-14T02:13:28+8",
            "2019-02-14T02:13:28+08:00x",
            "20190214T021328Z",
            "2019-02-14T02:13:28.1é",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
