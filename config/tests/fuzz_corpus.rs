//! Replays the committed `config_load` fuzz seeds (fuzz/corpus/config_load/) through the
//! function the fuzz target calls, whole and cut at every byte.

use std::path::Path;

#[test]
fn config_load_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/config_load");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        for cut in 0..=data.len() {
            popcast_config::fuzzing::load(&data[..cut]);
        }
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}
