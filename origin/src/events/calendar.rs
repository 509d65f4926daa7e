//! `/calendar.ics`: listed events as an iCalendar feed (RFC 5545) that calendar apps
//! subscribe to, each with its watch link.

use super::record::EventRecord;
use popcast_config::Access;
use time::OffsetDateTime;

/// A UTC date-time in iCalendar's basic form (`20261201T180000Z`).
fn ical_time(unix: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// TEXT escaping (RFC 5545 §3.3.11): backslash, semicolon, comma and newlines.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line, folded at 75 octets (never inside a UTF-8 sequence), CRLF.
fn line(out: &mut String, text: &str) {
    let mut width = 0;
    for c in text.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
}

/// The feed of `events` that are listed (ticketed ones too, marked as needing a ticket;
/// unlisted ones never), with links under `public_url`; `now` stamps it.
pub fn feed(events: &[EventRecord], public_url: &str, now: i64) -> String {
    let base = public_url.trim_end_matches('/');
    let mut out = String::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, "PRODID:-//Popcast//Events//EN");
    line(&mut out, "CALSCALE:GREGORIAN");
    line(&mut out, "X-WR-CALNAME:Popcast events");
    for r in events.iter().filter(|r| r.listed) {
        let url = format!("{base}/embed/{}", r.id);
        line(&mut out, "BEGIN:VEVENT");
        line(&mut out, &format!("UID:{}@popcast", r.id));
        line(&mut out, &format!("DTSTAMP:{}", ical_time(now)));
        line(&mut out, &format!("LAST-MODIFIED:{}", ical_time(r.updated)));
        line(&mut out, &format!("SEQUENCE:{}", r.version.saturating_sub(1)));
        line(&mut out, &format!("DTSTART:{}", ical_time(r.start)));
        line(&mut out, &format!("DTEND:{}", ical_time(r.end())));
        line(&mut out, &format!("SUMMARY:{}", escape(&r.title)));
        line(
            &mut out,
            &format!(
                "DESCRIPTION:{}",
                escape(&format!(
                    "Hosted by {}.{} Watch live: {url}",
                    r.creator,
                    if r.access == Access::Ticketed {
                        " Ticketed: a ticket is needed to watch."
                    } else {
                        ""
                    }
                ))
            ),
        );
        line(&mut out, &format!("URL:{url}"));
        line(&mut out, "STATUS:CONFIRMED");
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_folded_escaped_and_crlf() {
        let mut r = crate::events::record::sample("clinic");
        r.access = Access::Public;
        r.title = format!("Q&A; tips, tricks \\ more\n{}", "é".repeat(60));
        let f = feed(&[r], "https://pop.example/", 1_800_000_000);
        assert!(f.starts_with("BEGIN:VCALENDAR\r\n") && f.ends_with("END:VCALENDAR\r\n"));
        for l in f.split("\r\n") {
            assert!(l.len() <= 75, "{l:?} is {} octets", l.len());
            assert!(!l.contains('\n'));
        }
        let unfolded = f.replace("\r\n ", "");
        assert!(
            unfolded.contains(&format!(
                "SUMMARY:Q&A\\; tips\\, tricks \\\\ more\\n{}",
                "é".repeat(60)
            )),
            "{unfolded}"
        );
        assert!(unfolded.contains("DTSTART:20270115T080000Z"), "{unfolded}");
        assert!(unfolded.contains("URL:https://pop.example/embed/clinic"));
    }

    #[test]
    fn unlisted_events_are_left_out_and_ticketed_ones_say_so() {
        let mut hidden = crate::events::record::sample("private");
        hidden.listed = false;
        assert!(!feed(&[hidden], "http://x", 0).contains("VEVENT"));
        let ticketed = crate::events::record::sample("sale"); // ticketed, listed
        let f = feed(&[ticketed], "http://x", 0).replace("\r\n ", "");
        assert!(f.contains("UID:sale@popcast"), "{f}");
        assert!(f.contains("Ticketed: a ticket is needed to watch."), "{f}");
    }
}
