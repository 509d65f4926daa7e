//! Replays the committed FLV fuzz seeds (fuzz/corpus/flv/) through the function the `flv`
//! fuzz target calls, so its invariants are checked on every `make test`.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        run(&data);
        // Every truncation too: short reads are the commonest garbage.
        for cut in 0..data.len() {
            run(&data[..cut]);
        }
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn flv_corpus() {
    replay("flv", popcast_origin::fuzzing::flv);
}
