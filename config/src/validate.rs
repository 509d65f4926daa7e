//! Validation rules: values that parse but cannot work, reported by key.

use crate::Config;

/// Collects `(key, message)` problems.
#[derive(Default)]
struct Rules(Vec<(String, String)>);

impl Rules {
    fn check(&mut self, ok: bool, key: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.0.push((key.into(), message.into()));
        }
    }

    fn range<T: PartialOrd + std::fmt::Display + Copy>(&mut self, key: &str, v: T, min: T, max: T) {
        self.check(
            v >= min && v <= max,
            key,
            format!("{v} is outside the allowed range {min}..={max}"),
        );
    }

    fn at_most(&mut self, key: &str, count: usize, max: usize, what: &str) {
        self.check(
            count <= max,
            key,
            format!("{count} {what} is more than the limit of {max}"),
        );
    }

    fn even_size(&mut self, key: &str, width: u32, height: u32) {
        self.range(&format!("{key}.width"), width, 16, 7680);
        self.range(&format!("{key}.height"), height, 16, 4320);
        self.check(
            width % 2 == 0 && height % 2 == 0,
            format!("{key}.width"),
            format!("{width}x{height} must have even width and height (4:2:0 video)"),
        );
    }

    fn url_safe(&mut self, key: &str, name: &str) {
        self.check(
            !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
            key,
            format!("`{name}` must be 1-64 characters of a-z, 0-9, '-' and '_' (it appears in URLs)"),
        );
    }
}

/// Most named ladders (`[ladders.NAME]`).
pub const MAX_LADDERS: usize = 16;

/// Most ladder renditions accepted (each costs an encoder; real ladders have 3-6).
pub const MAX_RENDITIONS: usize = 16;
/// Most regions in the event defaults (bounds placement work per event).
pub const MAX_REGIONS: usize = 64;

/// Most events defined in the config file (the control API creates the rest).
pub const MAX_STATIC_EVENTS: usize = 1024;

/// Shortest operator token or node secret accepted (guessing must be infeasible).
pub const MIN_SECRET_BYTES: usize = 16;

/// AAC sampling rates (ISO/IEC 14496-3 sampling_frequency_index table).
pub const AAC_SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000, 7_350,
];

impl Config {
    /// Every rule this config breaks, as `(dotted key, message)`; empty when valid.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut r = Rules::default();

        let o = &self.origin;
        r.check(
            o.public_url.starts_with("http://") || o.public_url.starts_with("https://"),
            "origin.public_url",
            format!("`{}` must start with http:// or https://", o.public_url),
        );
        for (key, secret) in [
            ("origin.operator_token", &o.operator_token),
            ("origin.node_secret", &o.node_secret),
            ("qoe.metrics_token", &self.qoe.metrics_token),
            ("webhooks.secret", &self.webhooks.secret),
        ] {
            if let Some(s) = secret {
                r.check(
                    s.len() >= MIN_SECRET_BYTES,
                    key,
                    format!(
                        "must be at least {MIN_SECRET_BYTES} bytes long (it is {})",
                        s.len()
                    ),
                );
            }
        }
        r.at_most("origin.events", o.events.len(), MAX_STATIC_EVENTS, "events");
        for (i, e) in o.events.iter().enumerate() {
            let key = format!("origin.events[{i}]");
            r.url_safe(&format!("{key}.name"), &e.name);
            r.check(
                !o.events[..i].iter().any(|p| p.name == e.name),
                format!("{key}.name"),
                format!("event `{}` is listed twice", e.name),
            );
            r.check(
                e.stream_key.len() >= MIN_SECRET_BYTES,
                format!("{key}.stream_key"),
                format!(
                    "must be at least {MIN_SECRET_BYTES} bytes long (it is {})",
                    e.stream_key.len()
                ),
            );
            r.check(
                e.stream_key
                    .expose()
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'?'),
                format!("{key}.stream_key"),
                "must be printable ASCII without spaces, '/' or '?' (it is the last part of the publish URL)",
            );
            r.check(
                !o.events[..i].iter().any(|p| p.stream_key == e.stream_key),
                format!("{key}.stream_key"),
                "is the same as another event's key",
            );
        }
        let l = &o.limits;
        r.range(
            "origin.limits.max_connections_per_ip",
            l.max_connections_per_ip,
            1,
            100_000,
        );
        r.range(
            "origin.limits.rtmp_max_connections",
            l.rtmp_max_connections,
            1,
            1_000_000,
        );
        r.range(
            "origin.limits.http_max_connections",
            l.http_max_connections,
            1,
            1_000_000,
        );
        r.range(
            "origin.limits.write_stall_timeout_ms",
            l.write_stall_timeout_ms,
            100,
            600_000,
        );
        r.range(
            "origin.limits.max_publish_attempts_per_ip_per_minute",
            l.max_publish_attempts_per_ip_per_minute,
            1,
            10_000,
        );
        r.range(
            "origin.limits.rtmp_handshake_timeout_ms",
            l.rtmp_handshake_timeout_ms,
            100,
            120_000,
        );
        // RTMP carries sizes in 24 bits (chunk size is 31 bits, but messages cap it anyway).
        r.range(
            "origin.limits.rtmp_max_chunk_size",
            l.rtmp_max_chunk_size,
            128,
            0xFF_FFFF,
        );
        r.range(
            "origin.limits.rtmp_max_message_bytes",
            l.rtmp_max_message_bytes,
            1024,
            0xFF_FFFF,
        );
        r.range(
            "origin.limits.rtmp_max_chunk_streams",
            l.rtmp_max_chunk_streams,
            2,
            65_599,
        );
        r.range("origin.limits.amf_max_depth", l.amf_max_depth, 1, 64);
        r.range(
            "origin.limits.publisher_idle_timeout_ms",
            l.publisher_idle_timeout_ms,
            500,
            300_000,
        );
        r.range(
            "origin.limits.http_max_query_bytes",
            l.http_max_query_bytes,
            64,
            65_536,
        );

        let w = &o.whip;
        r.range("origin.whip.max_sessions", w.max_sessions, 1, 100_000);
        r.range("origin.whip.max_sdp_bytes", w.max_sdp_bytes, 1024, 1024 * 1024);
        r.range("origin.whip.max_candidates", w.max_candidates, 1, 1_000);
        r.range(
            "origin.whip.connect_timeout_ms",
            w.connect_timeout_ms,
            1_000,
            120_000,
        );
        r.range(
            "origin.whip.keyframe_request_min_ms",
            w.keyframe_request_min_ms,
            100,
            60_000,
        );
        r.range("origin.whip.aac_kbps", w.aac_kbps, 16, 512);
        r.at_most("origin.whip.ice_servers", w.ice_servers.len(), 8, "servers");
        for (i, u) in w.ice_servers.iter().enumerate() {
            r.check(
                ["stun:", "stuns:", "turn:", "turns:"]
                    .iter()
                    .any(|p| u.starts_with(p))
                    && u.len() <= 256
                    && u.bytes()
                        .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b',')),
                format!("origin.whip.ice_servers[{i}]"),
                format!("`{u}` must be a stun:, stuns:, turn: or turns: URL of at most 256 characters"),
            );
        }
        if let Some(ip) = w.public_ip {
            r.check(
                !ip.is_unspecified() && !ip.is_multicast(),
                "origin.whip.public_ip",
                format!("{ip} cannot be offered as a candidate (it must name one host)"),
            );
        }

        let e = &self.edge;
        r.url_safe("edge.node_id", &e.node_id);
        r.url_safe("edge.region", &e.region);
        if let Some(u) = &e.public_url {
            r.check(
                (u.starts_with("http://") || u.starts_with("https://"))
                    && u.len() <= 512
                    && !u.contains(['?', '#', ' ']),
                "edge.public_url",
                format!(
                    "`{u}` must be an http:// or https:// base URL of at most 512 bytes, without a query"
                ),
            );
        }
        r.check(
            e.origin_relay
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)),
            "edge.origin_relay",
            format!("`{}` must be host:port", e.origin_relay),
        );
        r.check(
            !e.origin_server_name.is_empty(),
            "edge.origin_server_name",
            "must not be empty",
        );
        if let Some(s) = &e.node_secret {
            r.check(
                s.len() >= MIN_SECRET_BYTES,
                "edge.node_secret",
                format!(
                    "must be at least {MIN_SECRET_BYTES} bytes long (it is {})",
                    s.len()
                ),
            );
        }
        r.range("edge.capacity_viewers", e.capacity_viewers, 1, 10_000_000);
        r.range(
            "edge.slot_memory_budget_bytes",
            e.slot_memory_budget_bytes,
            1 << 20,
            1 << 40,
        );
        r.range(
            "edge.slot_viewer_cap",
            e.slot_viewer_cap,
            1,
            e.capacity_viewers.max(1),
        );
        r.range(
            "edge.slot_release_grace_secs",
            e.slot_release_grace_secs,
            0,
            86_400,
        );

        let p = &self.packager;
        r.range("packager.part_target_ms", p.part_target_ms, 50, 500);
        r.range("packager.segment_target_ms", p.segment_target_ms, 500, 10_000);
        r.check(
            p.segment_target_ms >= 2 * p.part_target_ms,
            "packager.segment_target_ms",
            format!(
                "{} ms must be at least two parts of {} ms",
                p.segment_target_ms, p.part_target_ms
            ),
        );
        r.range("packager.window_segments", p.window_segments, 3, 100);
        r.range(
            "packager.part_window_segments",
            p.part_window_segments,
            1,
            p.window_segments.max(1),
        );
        r.range(
            "packager.max_frame_bytes",
            p.max_frame_bytes,
            64 * 1024,
            64 * 1024 * 1024,
        );
        r.range(
            "packager.max_timestamp_gap_ms",
            p.max_timestamp_gap_ms,
            500,
            60_000,
        );

        check_ladder(&mut r, "ladder", &self.ladder);
        r.at_most("ladders", self.ladders.len(), MAX_LADDERS, "named ladders");
        for (name, ladder) in self.ladders.iter().take(MAX_LADDERS) {
            r.url_safe(&format!("ladders.{name}"), name);
            r.check(
                name != "default" && name != "none",
                format!("ladders.{name}"),
                "`default` is the [ladder] section and `none` the source alone: pick another name",
            );
            check_ladder(&mut r, &format!("ladders.{name}"), ladder);
        }

        let ev = &self.events;
        r.range("events.provision_lead_secs", ev.provision_lead_secs, 0, 86_400);
        r.range("events.release_grace_secs", ev.release_grace_secs, 0, 86_400);
        r.range("events.reconnect_grace_secs", ev.reconnect_grace_secs, 0, 3_600);
        r.range(
            "events.publisher_inactivity_ms",
            ev.publisher_inactivity_ms,
            500,
            60_000,
        );
        r.range("events.duration_mins", ev.duration_mins, 1, 24 * 60);
        r.range("events.viewer_cap", ev.viewer_cap, 1, 10_000_000);
        r.check(
            !ev.regions.is_empty(),
            "events.regions",
            "must list at least one region",
        );
        r.at_most("events.regions", ev.regions.len(), MAX_REGIONS, "regions");
        for (i, region) in ev.regions.iter().take(MAX_REGIONS).enumerate() {
            r.url_safe(&format!("events.regions[{i}]"), region);
        }

        let q = &self.qoe;
        r.range("qoe.session_idle_secs", q.session_idle_secs, 2, 3_600);
        r.range("qoe.qualify_secs", q.qualify_secs, 0, 3_600);
        r.range(
            "qoe.max_sessions_per_event",
            q.max_sessions_per_event,
            1,
            10_000_000,
        );
        r.range("qoe.max_beacon_bytes", q.max_beacon_bytes, 256, 1 << 20);
        r.range("qoe.beacons_per_minute", q.beacons_per_minute, 1, 6_000);
        r.range("qoe.max_cmcd_bytes", q.max_cmcd_bytes, 64, 64 * 1024);
        r.range("qoe.sample_secs", q.sample_secs, 1, 3_600);
        r.range("qoe.max_samples", q.max_samples, 1, 100_000);
        r.range("qoe.max_events", q.max_events, 1, 1_000_000);

        let w = &self.webhooks;
        if let Some(url) = &w.url {
            r.check(
                url.strip_prefix("https://")
                    .or_else(|| url.strip_prefix("http://"))
                    .is_some_and(|rest| {
                        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                        // Host, then an optional port (IPv6 in brackets); the origin's
                        // webhook sender checks the rest of the host when it starts.
                        let (host, port) = match authority.rsplit_once(':') {
                            Some((h, p)) if !authority.ends_with(']') => (h, Some(p)),
                            _ => (authority, None),
                        };
                        !host.is_empty()
                            && !authority.contains(['@', '%'])
                            && port.is_none_or(|p| p.parse::<u16>().is_ok())
                    })
                    && url.len() <= 2_000
                    && !url.chars().any(|c| c.is_control() || c == ' '),
                "webhooks.url",
                "must be an https:// or http:// URL with a host and no credentials, at most 2000 characters",
            );
            r.check(
                w.secret.is_some(),
                "webhooks.secret",
                "is required when webhooks.url is set (receivers check every request's signature)",
            );
        }
        r.range("webhooks.timeout_ms", w.timeout_ms, 100, 60_000);
        r.range("webhooks.max_backoff_secs", w.max_backoff_secs, 1, 3_600);
        r.range("webhooks.keep_days", w.keep_days, 1, 3_650);

        let sl = &self.slate;
        r.even_size("slate", sl.width, sl.height);
        r.range("slate.fps", sl.fps, 1, 60);
        r.range("slate.video_kbps", sl.video_kbps, 50, 20_000);
        r.range("slate.ended_card_secs", sl.ended_card_secs, 0, 60);

        let t = &self.test_source;
        r.even_size("test_source", t.width, t.height);
        r.check(
            (1.0..=120.0).contains(&t.frame_rate.as_f64()),
            "test_source.frame_rate",
            format!("{} fps is outside 1..=120", t.frame_rate),
        );
        r.range(
            "test_source.keyframe_interval_ms",
            t.keyframe_interval_ms,
            100,
            10_000,
        );
        r.range("test_source.video_kbps", t.video_kbps, 50, 100_000);
        r.check(
            !t.encoder.is_empty(),
            "test_source.encoder",
            "must name an FFmpeg encoder",
        );
        r.check(
            AAC_SAMPLE_RATES.contains(&t.audio_sample_rate),
            "test_source.audio_sample_rate",
            format!(
                "{} Hz is not an AAC sampling rate ({AAC_SAMPLE_RATES:?})",
                t.audio_sample_rate
            ),
        );
        r.range("test_source.audio_channels", t.audio_channels, 1, 2);
        r.range("test_source.audio_kbps", t.audio_kbps, 16, 512);
        r.range("test_source.tone_hz", t.tone_hz, 20, 20_000);

        r.0
    }
}

/// The rules of one ladder (`[ladder]` or a `[ladders.NAME]`), its keys under `prefix`.
fn check_ladder(r: &mut Rules, prefix: &str, ladder: &crate::LadderConfig) {
    r.check(
        !ladder.encoder.is_empty(),
        format!("{prefix}.encoder"),
        "must name an FFmpeg encoder",
    );
    r.check(
        ladder.passthrough || !ladder.renditions.is_empty(),
        format!("{prefix}.renditions"),
        "with passthrough = false the ladder needs at least one rendition",
    );
    r.at_most(
        &format!("{prefix}.renditions"),
        ladder.renditions.len(),
        MAX_RENDITIONS,
        "renditions",
    );
    for (i, rend) in ladder.renditions.iter().take(MAX_RENDITIONS).enumerate() {
        let key = format!("{prefix}.renditions[{i}]");
        r.url_safe(&format!("{key}.name"), &rend.name);
        r.check(
            rend.name != "source" && rend.name != "audio",
            format!("{key}.name"),
            format!(
                "`{}` is reserved for the passthrough and audio renditions",
                rend.name
            ),
        );
        r.check(
            !ladder.renditions[..i].iter().any(|other| other.name == rend.name),
            format!("{key}.name"),
            format!("`{}` is used by an earlier rendition", rend.name),
        );
        r.even_size(&key, rend.width, rend.height);
        r.range(&format!("{key}.video_kbps"), rend.video_kbps, 50, 100_000);
    }
}
