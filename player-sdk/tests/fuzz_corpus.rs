//! Replays the committed `player_playlist` fuzz seeds (fuzz/corpus/player_playlist/) through
//! the function the fuzz target calls, whole and cut at every byte.

#[test]
fn player_playlist_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/player_playlist");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        for cut in 0..=data.len() {
            popcast_player::fuzzing::playlist(&data[..cut]);
        }
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}
