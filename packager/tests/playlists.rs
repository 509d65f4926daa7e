//! Playlists checked tag by tag against the spec by the independent checker
//! (`hls::check`): the built-in test source drives the segmenter and the live store, and
//! after every part the media playlists (full and delta), the reload from the previous one
//! and the multivariant playlist must pass every rule, Apple's 3× part hold-back included,
//! with two video renditions reporting each other.

use popcast_config::{FrameRate, TestSourceConfig};
use popcast_packager::ffmpeg::{Pacing, TestSource};
use popcast_packager::hls::check::{self, MediaPlaylist, report};
use popcast_packager::segmenter::{Event, Segmenter, SegmenterConfig};
use popcast_packager::store::{EventStore, PlaylistRequest, StoreConfig};

mod support;
use support::live;

fn media(text: &str) -> MediaPlaylist {
    check::check_media(text).unwrap_or_else(|v| panic!("{}\n{text}", report(&v)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_playlist_passes_the_checker_through_a_discontinuity() {
    let config = TestSourceConfig {
        width: 320,
        height: 180,
        frame_rate: FrameRate::new(30000, 1001),
        keyframe_interval_ms: 1000,
        video_kbps: 300,
        ..TestSourceConfig::default()
    };
    // A window longer than CAN-SKIP-UNTIL (6 × 2 s), so delta updates skip segments.
    let store = EventStore::new(StoreConfig {
        window_segments: 9,
        ..StoreConfig::default()
    });
    let mut seg = Segmenter::new(SegmenterConfig::default());
    let mut source = TestSource::start(&config, Pacing::Unpaced).unwrap();
    live::wire(&source, &mut seg, &store);
    // A second video rendition (the same frames through their own segmenter, as a ladder
    // rung would be), so that each video playlist reports the other.
    let mut copy = Segmenter::new(SegmenterConfig::default());
    copy.add_track(source.tracks()[0].clone()).unwrap();
    store.add_rendition("copy", source.tracks()[0].clone()).unwrap();
    let route = |t| Some(live::rendition(t).to_string());
    let mut prev: [Option<MediaPlaylist>; 3] = [None, None, None];
    let (mut checked, mut deltas, mut video_frames) = (0, 0, 0);
    // 26 s of media with a publisher gap (a discontinuity) after 11 s.
    while video_frames < 26 * 30 {
        let f = source.recv().await.unwrap();
        video_frames += usize::from(f.track == TestSource::VIDEO);
        if f.track == TestSource::VIDEO {
            copy.push(f.clone()).unwrap();
            store.apply(copy.drain(), |_| Some("copy".to_string()));
        }
        seg.push(f).unwrap();
        if video_frames == 11 * 30 {
            seg.discontinuity();
            copy.discontinuity();
            store.apply(copy.drain(), |_| Some("copy".to_string()));
        }
        let events: Vec<Event> = seg.drain().collect();
        let part_ended = events.iter().any(|e| matches!(e, Event::PartEnd { .. }));
        store.apply(events, route);
        if !part_ended {
            continue;
        }
        for (i, name) in ["video", "audio", "copy"].into_iter().enumerate() {
            let Ok(text) = store.media_playlist(name, PlaylistRequest::default()).await else {
                continue; // this rendition has no complete part yet
            };
            let full = media(&text);
            assert!(
                full.part_target.is_some() && full.preload_hint.is_some(),
                "{text}"
            );
            if let Some(p) = &prev[i] {
                let v = check::check_reload(p, &full);
                assert!(v.is_empty(), "{name} reload: {}\n{text}", report(&v));
            }
            let skip = PlaylistRequest {
                skip: true,
                ..PlaylistRequest::default()
            };
            let delta_text = store.media_playlist(name, skip).await.unwrap();
            let delta = media(&delta_text);
            if delta.skipped_segments > 0 {
                deltas += 1;
                let v = check::check_delta(&full, &delta);
                assert!(v.is_empty(), "{name} delta: {}\n{delta_text}", report(&v));
            }
            prev[i] = Some(full);
            checked += 1;
        }
        // Until every rendition has a complete segment there is no multivariant playlist.
        let Ok(mv) = store.multivariant() else {
            assert!(
                checked < 100,
                "no multivariant playlist after {checked} playlists"
            );
            continue;
        };
        check::check_multivariant(&mv).unwrap_or_else(|v| panic!("{}\n{mv}", report(&v)));
    }
    tokio::task::spawn_blocking(move || source.stop())
        .await
        .unwrap()
        .unwrap();
    seg.flush();
    store.apply(seg.drain(), route);
    store.end();

    let video = media(
        &store
            .media_playlist("video", PlaylistRequest::default())
            .await
            .unwrap(),
    );
    assert!(video.ended);
    assert_eq!(video.segments.iter().filter(|s| s.discontinuity).count(), 1);
    assert!(
        checked > 200 && deltas > 20,
        "{checked} playlists, {deltas} deltas"
    );

    let mv = check::check_multivariant(&store.multivariant().unwrap()).unwrap();
    assert_eq!(mv.variants.len(), 2);
    assert!(mv.independent_segments);
    let v = &mv.variants[0];
    assert_eq!(v.resolution, Some((320, 180)));
    assert_eq!(v.codecs.len(), 2, "{v:?}");
    assert!(
        v.codecs[0].starts_with("avc1.64") && v.codecs[1] == "mp4a.40.2",
        "{v:?}"
    );
    eprintln!("checked {checked} media playlists and {deltas} delta updates");
}
