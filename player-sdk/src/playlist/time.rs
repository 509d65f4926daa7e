//! EXT-X-PROGRAM-DATE-TIME values (ISO 8601 / RFC 3339 date-times) to `SystemTime`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &str, n: usize) -> Option<u32> {
    (s.len() == n && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

/// Parses `2026-11-24T04:22:54.123Z` (any fraction length, `Z` or `±hh:mm`, `t`/space as
/// separator). `None` for anything else, or a time before 1970.
pub fn parse_date_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if s.len() < 20 || s.len() > 40 || !s.is_ascii() {
        return None;
    }
    let (date, rest) = (&s[..10], &s[10..]);
    let sep = rest.as_bytes()[0];
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let rest = &rest[1..];
    let (y, mo, d) = (
        digits(&date[0..4], 4)?,
        digits(&date[5..7], 2)?,
        digits(&date[8..10], 2)?,
    );
    if &date[4..5] != "-" || &date[7..8] != "-" || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let (h, mi, sec) = (
        digits(&rest[0..2], 2)?,
        digits(&rest[3..5], 2)?,
        digits(&rest[6..8], 2)?,
    );
    if &rest[2..3] != ":" || &rest[5..6] != ":" || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &rest[8..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac.find(|c: char| !c.is_ascii_digit()).unwrap_or(frac.len());
        if end == 0 {
            return None;
        }
        let f = &frac[..end.min(9)];
        nanos = f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32);
        rest = &frac[end..];
    }
    let offset: i64 = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let secs = i64::from(digits(&o[1..3], 2)?) * 3600 + i64::from(digits(&o[4..6], 2)?) * 60;
            if o.starts_with('-') { -secs } else { secs }
        }
        _ => return None,
    };
    let unix = days_from_civil(i64::from(y), mo, d) * 86_400
        + i64::from(h) * 3600
        + i64::from(mi) * 60
        + i64::from(sec)
        - offset;
    let unix = u64::try_from(unix).ok()?;
    Some(UNIX_EPOCH + Duration::new(unix, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_in_the_forms_players_meet() {
        let t = parse_date_time("2026-11-24T04:22:54.123Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_795_494_174, 123_000_000)
        );
        assert_eq!(parse_date_time("2026-11-24T05:22:54.123+01:00"), Some(t));
        assert_eq!(parse_date_time("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_date_time("2000-02-29T12:00:00.5Z")
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap(),
            Duration::new(951_825_600, 500_000_000)
        );
        for bad in [
            "",
            "2026-11-24",
            "2026-13-01T00:00:00Z",
            "2026-11-24T25:00:00Z",
            "2026-11-24T04:22:54",
            "2026-11-24T04:22:54.Z",
            "1969-12-31T23:59:59Z",
            "２０２６-11-24T04:22:54Z",
        ] {
            assert_eq!(parse_date_time(bad), None, "{bad}");
        }
    }
}
