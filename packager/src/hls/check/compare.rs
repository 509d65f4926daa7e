//! Rules across two versions of one Media Playlist: successive reloads (§6.2.1, §6.2.2), and a
//! Playlist Delta Update against the full Playlist a client holds (§6.2.5.1, §6.3.7).

use super::{
    EPSILON, Findings, HOLD_BACK_TOLERANCE, MediaPlaylist, PROGRAM_DATE_TIME_TOLERANCE, Part, Segment,
    Violation, datetime, rules, secs,
};

/// Checks that `next`, a later version of the same Media Playlist, only moved forward from
/// `prev`: the Target Duration kept, sequence numbers not decreasing, segments and parts present
/// in both unchanged, nothing appended after EXT-X-ENDLIST, and no removal that leaves a live
/// playlist shorter than three Target Durations. Each input should itself pass [`super::check_media`].
/// Per-segment Discontinuity Sequence Numbers are compared only between full playlists.
pub fn check_reload(prev: &MediaPlaylist, next: &MediaPlaylist) -> Vec<Violation> {
    let mut out = Findings::default();
    if prev.target_duration != next.target_duration {
        let detail = format!(
            "EXT-X-TARGETDURATION changed from {} to {}; it must not change",
            prev.target_duration, next.target_duration
        );
        out.push(1, rules::RELOAD_TARGET_DURATION, detail);
    }
    if next.media_sequence < prev.media_sequence {
        let detail = format!(
            "EXT-X-MEDIA-SEQUENCE went from {} back to {}",
            prev.media_sequence, next.media_sequence
        );
        out.push(1, rules::RELOAD_MEDIA_SEQUENCE, detail);
    }
    if next.discontinuity_sequence < prev.discontinuity_sequence {
        let detail = format!(
            "EXT-X-DISCONTINUITY-SEQUENCE went from {} back to {}",
            prev.discontinuity_sequence, next.discontinuity_sequence
        );
        out.push(1, rules::RELOAD_DISCONTINUITY, detail);
    }
    let ids = Ids {
        history: rules::RELOAD_HISTORY,
        parts: rules::RELOAD_PARTS,
        backwards: rules::RELOAD_BACKWARDS,
    };
    compare_segments(prev, next, ids, &mut out);
    if !prev.delta_update && !next.delta_update {
        let moved = next.segments.iter().find(|s| {
            prev.segment(s.msn)
                .is_some_and(|p| p.discontinuity_sequence != s.discontinuity_sequence)
        });
        if let Some(s) = moved {
            let before = prev.segment(s.msn).map_or(0, |p| p.discontinuity_sequence);
            let detail = format!(
                "segment {} had Discontinuity Sequence Number {before}, now {}; removing an \
                 EXT-X-DISCONTINUITY must raise EXT-X-DISCONTINUITY-SEQUENCE to match",
                s.msn, s.discontinuity_sequence
            );
            out.push(s.line, rules::RELOAD_DISCONTINUITY, detail);
        }
    }
    if prev.ended {
        if !next.ended {
            out.push(1, rules::RELOAD_ENDED, "EXT-X-ENDLIST was removed again");
        }
        let grew = match (prev.segments.last(), next.segments.last()) {
            (Some(p), Some(n)) => n.msn > p.msn,
            (None, Some(_)) => true,
            _ => false,
        };
        if grew {
            let line = next.segments.last().map_or(1, |s| s.line);
            out.push(
                line,
                rules::RELOAD_ENDED,
                "segments were added after EXT-X-ENDLIST",
            );
        }
    }
    if next.media_sequence > prev.media_sequence && !next.ended && next.target_duration > 0 {
        let td = next.target_duration as f64;
        let listed: f64 = next.complete_segments().map(|s| s.duration).sum();
        // A delta update's skipped segments count at the Target Duration each (at most).
        let duration = listed + next.skipped_segments as f64 * td;
        if duration + HOLD_BACK_TOLERANCE < 3.0 * td {
            let detail = format!(
                "segments were removed, leaving {} s of segments, less than three Target Durations ({} s)",
                secs(duration),
                secs(3.0 * td)
            );
            out.push(1, rules::RELOAD_WINDOW, detail);
        }
    }
    out.into_sorted()
}

/// Checks a Playlist Delta Update (`delta`, with EXT-X-SKIP) against `full`, the complete
/// version a client holds (fetched at the same moment or earlier): the client must be able to
/// merge them, and what both show must agree. Each input should itself pass
/// [`super::check_media`], which also checks the Skip Boundary of the update.
pub fn check_delta(full: &MediaPlaylist, delta: &MediaPlaylist) -> Vec<Violation> {
    let mut out = Findings::default();
    let skip = rules::DELTA_SKIP;
    if !delta.delta_update {
        out.push(
            1,
            skip,
            "the update has no EXT-X-SKIP, so it is not a Playlist Delta Update",
        );
        return out.into_sorted();
    }
    if full.delta_update {
        out.push(1, skip, "the full playlist has EXT-X-SKIP itself");
        return out.into_sorted();
    }
    if full
        .server_control
        .as_ref()
        .and_then(|sc| sc.can_skip_until)
        .is_none()
    {
        out.push(
            1,
            skip,
            "the full playlist does not advertise CAN-SKIP-UNTIL, so no delta update exists",
        );
    }
    if full.ended {
        out.push(
            1,
            skip,
            "the full playlist has EXT-X-ENDLIST, so servers ignore _HLS_skip",
        );
    }
    let mismatch = rules::DELTA_MISMATCH;
    if full.target_duration != delta.target_duration {
        let detail = format!(
            "EXT-X-TARGETDURATION is {} in the full playlist and {} in the update",
            full.target_duration, delta.target_duration
        );
        out.push(1, mismatch, detail);
    }
    if full.part_target != delta.part_target {
        let detail = format!(
            "PART-TARGET is {:?} in the full playlist and {:?} in the update",
            full.part_target, delta.part_target
        );
        out.push(1, mismatch, detail);
    }
    if full.server_control != delta.server_control {
        out.push(
            1,
            mismatch,
            "EXT-X-SERVER-CONTROL differs between the full playlist and the update",
        );
    }
    // The client must hold every skipped segment (§6.3.7).
    let skipped = delta.media_sequence..delta.media_sequence.saturating_add(delta.skipped_segments);
    let missing = skipped
        .clone()
        .find(|msn| full.segment(*msn).is_none_or(|s| s.uri.is_none()));
    if let Some(msn) = missing {
        let line = delta.segments.first().map_or(1, |s| s.line);
        let detail = format!(
            "the update skips segments {}..={} but segment {msn} is not a complete segment of the full \
             playlist, so a client cannot merge",
            skipped.start,
            skipped.end.saturating_sub(1)
        );
        out.push(line, rules::DELTA_MERGE, detail);
    }
    let ids = Ids {
        history: mismatch,
        parts: mismatch,
        backwards: mismatch,
    };
    compare_segments(full, delta, ids, &mut out);
    discontinuities(full, delta, &mut out);
    same_moment_tags(full, delta, &mut out);
    out.into_sorted()
}

/// §4.4.5.2: skipping does not change EXT-X-DISCONTINUITY-SEQUENCE, so the update's value is
/// that of its first (skipped) segment, and the listed segments keep their numbers.
fn discontinuities(full: &MediaPlaylist, delta: &MediaPlaylist, out: &mut Findings) {
    let rule = rules::DELTA_DISCONTINUITY;
    let skipped = delta.media_sequence..delta.media_sequence.saturating_add(delta.skipped_segments);
    let mut hidden = 0u64;
    for msn in skipped.clone().take(full.segments.len()) {
        if let Some(s) = full.segment(msn) {
            hidden += u64::from(s.discontinuity);
        }
    }
    if let Some(first) = full.segment(skipped.start).filter(|_| !skipped.is_empty()) {
        let expected = first
            .discontinuity_sequence
            .saturating_sub(u64::from(first.discontinuity));
        if delta.discontinuity_sequence != expected {
            let detail = format!(
                "EXT-X-DISCONTINUITY-SEQUENCE is {} but the full playlist puts {expected} before segment {}",
                delta.discontinuity_sequence, first.msn
            );
            out.push(1, rule, detail);
            return;
        }
    }
    let moved = delta.segments.iter().find_map(|s| {
        let f = full.segment(s.msn)?;
        let merged = s.discontinuity_sequence.saturating_add(hidden);
        (merged != f.discontinuity_sequence).then_some((s, merged, f.discontinuity_sequence))
    });
    if let Some((s, merged, expected)) = moved {
        let detail = format!(
            "merged with the skipped segments, segment {} has Discontinuity Sequence Number {merged}, but {expected} \
             in the full playlist",
            s.msn
        );
        out.push(s.line, rule, detail);
    }
}

/// §6.2.5.1 "All tags that were not skipped MUST remain": when both show the same live edge,
/// the preload hint and the rendition reports agree.
fn same_moment_tags(full: &MediaPlaylist, delta: &MediaPlaylist, out: &mut Findings) {
    let edge = |pl: &MediaPlaylist| {
        pl.segments
            .last()
            .map(|s| (s.msn, s.uri.is_some(), s.parts.len()))
    };
    if edge(full) != edge(delta) {
        return;
    }
    let strip = |h: &Option<super::PreloadHint>| {
        h.as_ref()
            .map(|h| (h.uri.clone(), h.byterange_start, h.byterange_length))
    };
    if strip(&full.preload_hint) != strip(&delta.preload_hint) {
        let line = delta.preload_hint.as_ref().map_or(1, |h| h.line);
        out.push(
            line,
            rules::DELTA_MISMATCH,
            "at the same live edge the update's EXT-X-PRELOAD-HINT differs",
        );
    }
    let reports = |pl: &MediaPlaylist| {
        let mut r: Vec<_> = pl
            .rendition_reports
            .iter()
            .map(|r| (r.uri.clone(), r.last_msn, r.last_part))
            .collect();
        r.sort();
        r
    };
    if reports(full) != reports(delta) {
        let line = delta.rendition_reports.first().map_or(1, |r| r.line);
        out.push(
            line,
            rules::DELTA_MISMATCH,
            "at the same live edge the update's EXT-X-RENDITION-REPORT tags differ",
        );
    }
}

/// Which rule each kind of difference is reported under.
#[derive(Clone, Copy)]
struct Ids {
    history: &'static str,
    parts: &'static str,
    backwards: &'static str,
}

/// Segments present in both must agree, and `next` must not end before `old`.
fn compare_segments(old: &MediaPlaylist, next: &MediaPlaylist, ids: Ids, out: &mut Findings) {
    for s in &next.segments {
        if let Some(p) = old.segment(s.msn) {
            same_segment(p, s, ids, out);
            moved_date(old, p, s, ids, out);
        }
    }
    let Some(old_last) = old.segments.last() else {
        return;
    };
    let behind = match next.segments.last() {
        Some(n) => n.msn < old_last.msn,
        None => next.media_sequence.saturating_add(next.skipped_segments) <= old_last.msn,
    };
    if behind {
        let line = next.segments.last().map_or(1, |s| s.line);
        let detail = format!(
            "the playlist now ends before segment {}, which it listed before",
            old_last.msn
        );
        out.push(line, ids.backwards, detail);
    }
}

/// A date newly written on a segment (servers re-date the first segment after removing the one
/// that carried the date) must agree with the date the earlier version implied for it.
fn moved_date(old_pl: &MediaPlaylist, old: &Segment, new: &Segment, ids: Ids, out: &mut Findings) {
    let (None, Some(now)) = (&old.program_date_time, &new.program_date_time) else {
        return;
    };
    let Ok(now) = datetime::parse(now) else {
        return;
    };
    let Some(implied) = implied_date(old_pl, old.msn) else {
        return;
    };
    if (now - implied).abs() >= PROGRAM_DATE_TIME_TOLERANCE {
        let detail = format!(
            "segment {} is now dated {} s away from the date the earlier version implied for it",
            new.msn,
            secs(now - implied)
        );
        out.push(new.line, ids.history, detail);
    }
}

/// The date of a segment's start from the nearest earlier EXT-X-PROGRAM-DATE-TIME, when no
/// discontinuity lies between.
fn implied_date(pl: &MediaPlaylist, msn: u64) -> Option<f64> {
    let index = pl.segments.iter().position(|s| s.msn == msn)?;
    let mut elapsed = 0.0;
    for s in pl.segments[..=index].iter().rev() {
        if s.msn != msn {
            elapsed += s.duration;
        }
        if let Some(date) = s.program_date_time.as_deref() {
            return datetime::parse(date).ok().map(|d| d + elapsed);
        }
        if s.discontinuity {
            return None;
        }
    }
    None
}

fn same_segment(old: &Segment, new: &Segment, ids: Ids, out: &mut Findings) {
    let msn = new.msn;
    let mut differences = Vec::new();
    if old.uri.is_some() && new.uri.is_none() {
        let detail = format!("segment {msn} was complete before and is now listed as in progress");
        out.push(new.line, ids.backwards, detail);
        return;
    }
    if old.uri.is_some() {
        if old.uri != new.uri {
            differences.push(format!("URI {:?} became {:?}", old.uri, new.uri));
        }
        if (old.duration - new.duration).abs() > EPSILON {
            differences.push(format!(
                "EXTINF {} became {}",
                secs(old.duration),
                secs(new.duration)
            ));
        }
        if old.byterange != new.byterange {
            differences.push("its EXT-X-BYTERANGE changed".to_owned());
        }
        if old.gap != new.gap {
            differences.push("EXT-X-GAP changed".to_owned());
        }
    }
    if old.discontinuity != new.discontinuity {
        differences.push("EXT-X-DISCONTINUITY changed".to_owned());
    }
    if let (Some(before), Some(now)) = (&old.program_date_time, &new.program_date_time) {
        let same = match (datetime::parse(before), datetime::parse(now)) {
            (Ok(a), Ok(b)) => (a - b).abs() < 0.0005,
            _ => before == now,
        };
        if !same {
            differences.push(format!("EXT-X-PROGRAM-DATE-TIME {before} became {now}"));
        }
    }
    if !differences.is_empty() {
        let detail = format!("segment {msn} was rewritten: {}", differences.join("; "));
        out.push(new.line, ids.history, detail);
    }
    same_parts(old, new, ids, out);
}

/// The parts of one segment: a complete segment's only lose old parts from the front; an
/// in-progress segment's keep every part and only gain new ones at the end.
fn same_parts(old: &Segment, new: &Segment, ids: Ids, out: &mut Findings) {
    let (p, n) = (&old.parts, &new.parts);
    if p.is_empty() && !n.is_empty() && old.uri.is_some() {
        let detail = format!(
            "segment {} was complete without parts, yet now lists parts",
            new.msn
        );
        out.push(n[0].line, ids.parts, detail);
        return;
    }
    if p.is_empty() || n.is_empty() {
        if new.uri.is_none() && !p.is_empty() {
            let detail = format!("the parts segment {} listed before are gone", new.msn);
            out.push(new.line, ids.backwards, detail);
        }
        return;
    }
    let identity = |a: &Part, b: &Part| a.uri == b.uri && a.byterange == b.byterange;
    let line = n[0].line;
    let Some(start) = p.iter().position(|x| identity(x, &n[0])) else {
        if new.uri.is_none() || old.uri.is_some() {
            let detail = format!(
                "segment {}'s parts were replaced: {} was not among the parts listed before",
                new.msn, n[0].uri
            );
            out.push(line, ids.parts, detail);
        }
        return;
    };
    if old.uri.is_some() && n.len() > p.len() - start {
        let detail = format!("segment {} was complete, yet gained parts", new.msn);
        out.push(line, ids.parts, detail);
    }
    for (k, before) in p[start..].iter().enumerate() {
        let Some(now) = n.get(k) else {
            let detail = format!("part {} of segment {} disappeared", before.uri, new.msn);
            out.push(new.line, ids.backwards, detail);
            return;
        };
        let same = identity(before, now)
            && (before.duration - now.duration).abs() <= EPSILON
            && before.independent == now.independent
            && before.gap == now.gap;
        if !same {
            let detail = format!(
                "part {} of segment {} changed (was {} s{}{}, now {} {} s{}{})",
                k,
                new.msn,
                secs(before.duration),
                if before.independent { ", INDEPENDENT" } else { "" },
                if before.gap { ", GAP" } else { "" },
                now.uri,
                secs(now.duration),
                if now.independent { ", INDEPENDENT" } else { "" },
                if now.gap { ", GAP" } else { "" },
            );
            out.push(now.line, ids.parts, detail);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{APPLE_DELTA, APPLE_LL, BASE, edit, ended_base, only};
    use super::super::{check_media, report};
    use super::*;

    fn model(text: &str) -> MediaPlaylist {
        check_media(text).unwrap_or_else(|v| panic!("fixture must pass check_media:\n{}", report(&v)))
    }

    fn reload(prev: &str, next: &str) -> Vec<Violation> {
        check_reload(&model(prev), &model(next))
    }

    fn delta(full: &str, update: &str) -> Vec<Violation> {
        check_delta(&model(full), &model(update))
    }

    /// BASE one part later: 104.2 is out, 104.3 hinted.
    fn one_part_later() -> String {
        let next = edit(
            BASE,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"104.2.m4s\"",
            "#EXT-X-PART:DURATION=0.200,URI=\"104.2.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"104.3.m4s\"",
        );
        edit(&next, "LAST-PART=1", "LAST-PART=2")
    }

    /// BASE a segment later: 104 complete, 105 started, 100 removed.
    fn one_segment_later() -> String {
        let parts: String = (2..5)
            .map(|i| format!("#EXT-X-PART:DURATION=0.200,URI=\"104.{i}.m4s\"\n"))
            .collect();
        let next = edit(
            BASE,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"104.2.m4s\"",
            &format!(
                "{parts}#EXTINF:1.000,\n104.m4s\n#EXT-X-PART:DURATION=0.200,URI=\"105.0.m4s\",INDEPENDENT=YES\n\
                 #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"105.1.m4s\""
            ),
        );
        let next = edit(&next, "#EXT-X-MEDIA-SEQUENCE:100", "#EXT-X-MEDIA-SEQUENCE:101");
        let next = edit(
            &next,
            "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:00.000Z\n#EXTINF:1.000,\n100.m4s\n",
            "",
        );
        let next = edit(
            &next,
            "#EXTINF:1.000,\n101.m4s",
            "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:01.000Z\n#EXTINF:1.000,\n101.m4s",
        );
        edit(&next, "LAST-MSN=104,LAST-PART=1", "LAST-MSN=105,LAST-PART=0")
    }

    #[test]
    fn reloads_that_move_forward_pass() {
        let (a, b, c) = (BASE.to_owned(), one_part_later(), one_segment_later());
        for (prev, next) in [(&a, &a), (&a, &b), (&b, &c), (&a, &c)] {
            let v = reload(prev, next);
            assert!(v.is_empty(), "{}", report(&v));
        }
    }

    #[test]
    fn target_duration_never_changes() {
        let next = edit(
            &one_part_later(),
            "#EXT-X-TARGETDURATION:1",
            "#EXT-X-TARGETDURATION:2",
        );
        let next = edit(&next, "CAN-SKIP-UNTIL=6.0", "CAN-SKIP-UNTIL=12.0");
        only(reload(BASE, &next), rules::RELOAD_TARGET_DURATION, &next);
    }

    #[test]
    fn media_sequence_never_decreases() {
        let prev = one_segment_later();
        let next = edit(&prev, "#EXT-X-MEDIA-SEQUENCE:101", "#EXT-X-MEDIA-SEQUENCE:100");
        let next = edit(
            &next,
            "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:01.000Z\n",
            "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:00.000Z\n#EXTINF:1.000,\n100.m4s\n#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:01.000Z\n",
        );
        only(reload(&prev, &next), rules::RELOAD_MEDIA_SEQUENCE, &next);
    }

    #[test]
    fn history_is_never_rewritten() {
        let next = edit(&one_part_later(), "\n102.m4s", "\n102-again.m4s");
        let v = only(reload(BASE, &next), rules::RELOAD_HISTORY, &next);
        assert_eq!(v[0].line, 19);
        assert!(v[0].detail.contains("segment 102"), "{}", v[0].detail);
        let next = edit(
            &one_part_later(),
            "#EXTINF:1.000,\n101.m4s",
            "#EXTINF:0.999,\n101.m4s",
        );
        only(reload(BASE, &next), rules::RELOAD_HISTORY, &next);
        let next = edit(
            &one_part_later(),
            "2026-05-01T10:00:00.000Z",
            "2026-05-01T10:00:00.500Z",
        );
        only(reload(BASE, &next), rules::RELOAD_HISTORY, &next);
    }

    #[test]
    fn a_date_written_later_agrees_with_the_earlier_mapping() {
        // One segment later the server dates 101, which BASE dated implicitly as 10:00:01.
        let wrong = edit(&one_segment_later(), "10:00:01.000Z", "10:00:03.000Z");
        let v = only(reload(BASE, &wrong), rules::RELOAD_HISTORY, &wrong);
        assert!(v[0].detail.contains("segment 101"), "{}", v[0].detail);
    }

    #[test]
    fn discontinuity_sequence_stays_consistent() {
        let next = edit(
            &one_part_later(),
            "#EXT-X-MAP",
            "#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-MAP",
        );
        let v = only(reload(BASE, &next), rules::RELOAD_DISCONTINUITY, &next);
        assert!(v[0].detail.contains("segment 100"), "{}", v[0].detail);
        let prev = edit(BASE, "#EXT-X-MAP", "#EXT-X-DISCONTINUITY-SEQUENCE:3\n#EXT-X-MAP");
        let next = edit(
            &one_part_later(),
            "#EXT-X-MAP",
            "#EXT-X-DISCONTINUITY-SEQUENCE:2\n#EXT-X-MAP",
        );
        let v = reload(&prev, &next);
        assert!(
            v.iter().all(|v| v.rule == rules::RELOAD_DISCONTINUITY) && v.len() == 2,
            "{}",
            report(&v)
        );
        // Removing the segment that carried the only EXT-X-DISCONTINUITY must raise the sequence.
        let prev = edit(
            BASE,
            "#EXTINF:1.000,\n101.m4s",
            "#EXT-X-DISCONTINUITY\n#EXTINF:1.000,\n101.m4s",
        );
        let dated_101 = "#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:01.000Z\n#EXTINF:1.000,\n101.m4s\n";
        let next = edit(&one_segment_later(), dated_101, "");
        let next = edit(&next, "#EXT-X-MEDIA-SEQUENCE:101", "#EXT-X-MEDIA-SEQUENCE:102");
        let first_part = "#EXT-X-PART:DURATION=0.200,URI=\"102.0.m4s\"";
        let next = edit(
            &next,
            first_part,
            &format!("#EXT-X-PROGRAM-DATE-TIME:2026-05-01T10:00:02.000Z\n{first_part}"),
        );
        let v = only(reload(&prev, &next), rules::RELOAD_DISCONTINUITY, &next);
        assert!(v[0].detail.contains("segment 102"), "{}", v[0].detail);
        let raised = edit(&next, "#EXT-X-MAP", "#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-MAP");
        let v = reload(&prev, &raised);
        assert!(v.is_empty(), "{}", report(&v));
    }

    #[test]
    fn segments_and_parts_never_go_backwards() {
        let v = only(reload(&one_part_later(), BASE), rules::RELOAD_BACKWARDS, BASE);
        assert!(v[0].detail.contains("104.2.m4s"), "{}", v[0].detail);
        let v = reload(&one_segment_later(), &one_part_later());
        assert!(
            v.iter().any(|v| v.rule == rules::RELOAD_BACKWARDS),
            "{}",
            report(&v)
        );
    }

    #[test]
    fn parts_are_never_changed() {
        let next = edit(
            &one_part_later(),
            "DURATION=0.200,URI=\"104.1.m4s\"",
            "DURATION=0.180,URI=\"104.1.m4s\"",
        );
        only(reload(BASE, &next), rules::RELOAD_PARTS, &next);
        let next = edit(
            &one_part_later(),
            "URI=\"104.1.m4s\"",
            "URI=\"104.1.m4s\",GAP=YES",
        );
        only(reload(BASE, &next), rules::RELOAD_PARTS, &next);
        let parts: String = (0..5)
            .map(|i| format!("#EXT-X-PART:DURATION=0.200,URI=\"101.{i}.m4s\"\n"))
            .collect();
        let next = edit(
            &one_part_later(),
            "#EXTINF:1.000,\n101.m4s",
            &format!("{parts}#EXTINF:1.000,\n101.m4s"),
        );
        let (_, v) = super::super::inspect_media(&next);
        let next_model = super::super::inspect_media(&next).0;
        assert!(v.iter().all(|v| v.rule == rules::PART_STALE), "{}", report(&v));
        let v = check_reload(&model(BASE), &next_model);
        only(v, rules::RELOAD_PARTS, &next);
    }

    #[test]
    fn nothing_is_added_after_endlist() {
        let ended = ended_base();
        let parts: String = (0..5)
            .map(|i| format!("#EXT-X-PART:DURATION=0.200,URI=\"104.{i}.m4s\"\n"))
            .collect();
        let more = edit(
            &ended,
            "#EXT-X-ENDLIST\n",
            &format!("{parts}#EXTINF:1.000,\n104.m4s\n#EXT-X-ENDLIST\n"),
        );
        only(reload(&ended, &more), rules::RELOAD_ENDED, &more);
        let reopened = edit(&ended, "#EXT-X-ENDLIST\n", "");
        let v = check_reload(&model(&ended), &super::super::inspect_media(&reopened).0);
        only(v, rules::RELOAD_ENDED, &reopened);
    }

    #[test]
    fn removal_keeps_three_target_durations() {
        let next = edit(BASE, "#EXT-X-MEDIA-SEQUENCE:100", "#EXT-X-MEDIA-SEQUENCE:102");
        let next = edit(&next, "#EXTINF:1.000,\n100.m4s\n#EXTINF:1.000,\n101.m4s\n", "");
        let next = edit(&next, "2026-05-01T10:00:00.000Z", "2026-05-01T10:00:02.000Z");
        let v = only(reload(BASE, &next), rules::RELOAD_WINDOW, &next);
        assert!(v[0].detail.contains("2 s"), "{}", v[0].detail);
    }

    // Delta updates.

    /// The full playlist at the moment of APPLE_DELTA: APPLE_LL one part later.
    fn apple_full_at_delta() -> String {
        let full = edit(
            APPLE_LL,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart273.3.mp4\"",
            "#EXT-X-PART:DURATION=0.33334,URI=\"filePart273.3.mp4\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"filePart273.4.mp4\"",
        );
        let full = edit(&full, "LAST-MSN=273,LAST-PART=2", "LAST-MSN=273,LAST-PART=3");
        edit(&full, "LAST-MSN=273,LAST-PART=1", "LAST-MSN=273,LAST-PART=3")
    }

    #[test]
    fn apples_delta_update_merges_with_its_full_playlist() {
        for full in [APPLE_LL.to_owned(), apple_full_at_delta()] {
            let v = delta(&full, APPLE_DELTA);
            assert!(v.is_empty(), "{}", report(&v));
        }
    }

    #[test]
    fn a_delta_needs_skip_and_a_full_playlist_that_allows_it() {
        only(delta(APPLE_LL, APPLE_LL), rules::DELTA_SKIP, APPLE_LL);
        only(delta(APPLE_DELTA, APPLE_DELTA), rules::DELTA_SKIP, APPLE_DELTA);
        let no_skip = edit(APPLE_LL, ",CAN-SKIP-UNTIL=24.0", "");
        let v = delta(&no_skip, APPLE_DELTA);
        assert!(v.iter().any(|v| v.rule == rules::DELTA_SKIP), "{}", report(&v));
    }

    #[test]
    fn skipped_segments_must_be_in_the_full_playlist() {
        let update = edit(
            APPLE_DELTA,
            "#EXT-X-MEDIA-SEQUENCE:264",
            "#EXT-X-MEDIA-SEQUENCE:263",
        );
        let update = edit(&update, "SKIPPED-SEGMENTS=3", "SKIPPED-SEGMENTS=4");
        let v = only(delta(APPLE_LL, &update), rules::DELTA_MERGE, &update);
        assert!(v[0].detail.contains("segment 263"), "{}", v[0].detail);
    }

    #[test]
    fn what_both_list_agrees() {
        let update = edit(APPLE_DELTA, "fileSequence268.mp4", "fileSequence268b.mp4");
        only(delta(APPLE_LL, &update), rules::DELTA_MISMATCH, &update);
        let update = edit(APPLE_DELTA, "PART-HOLD-BACK=1.0", "PART-HOLD-BACK=1.1");
        only(delta(APPLE_LL, &update), rules::DELTA_MISMATCH, &update);
        // At the same live edge, the hint and the reports are the same too.
        let update = edit(
            APPLE_DELTA,
            "URI=\"filePart273.4.mp4\"",
            "URI=\"filePart273.5.mp4\"",
        );
        only(
            delta(&apple_full_at_delta(), &update),
            rules::DELTA_MISMATCH,
            &update,
        );
        let update = edit(
            APPLE_DELTA,
            "#EXT-X-RENDITION-REPORT:URI=\"../4M/waitForMSN.php\",LAST-MSN=273,LAST-PART=3\n",
            "",
        );
        only(
            delta(&apple_full_at_delta(), &update),
            rules::DELTA_MISMATCH,
            &update,
        );
    }

    #[test]
    fn skipping_keeps_the_discontinuity_sequence() {
        let update = edit(
            APPLE_DELTA,
            "#EXT-X-SKIP",
            "#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-SKIP",
        );
        only(delta(APPLE_LL, &update), rules::DELTA_DISCONTINUITY, &update);
        // A discontinuity inside the skipped segments still counts for the listed ones.
        let full = edit(
            APPLE_LL,
            "#EXTINF:4.00008,\nfileSequence265.mp4",
            "#EXT-X-DISCONTINUITY\n#EXTINF:4.00008,\nfileSequence265.mp4",
        );
        let v = delta(&full, APPLE_DELTA);
        assert!(v.is_empty(), "{}", report(&v));
        let wrong = edit(APPLE_DELTA, "#EXT-X-SKIP", "#EXT-X-DISCONTINUITY\n#EXT-X-SKIP");
        let wrong = edit(&wrong, "#EXT-X-DISCONTINUITY\n#EXT-X-SKIP", "#EXT-X-SKIP");
        let wrong = edit(
            &wrong,
            "#EXTINF:4.00008,\nfileSequence268.mp4",
            "#EXT-X-DISCONTINUITY\n#EXTINF:4.00008,\nfileSequence268.mp4",
        );
        let v = delta(&full, &wrong);
        assert!(
            v.iter().any(|v| v.rule == rules::DELTA_DISCONTINUITY),
            "{}",
            report(&v)
        );
    }
}
