//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz targets'
//! checks on the stable toolchain, so `cargo test` keeps every input that ever found a bug,
//! and the committed seed inputs, passing.

#[path = "../../fuzz/src/harness.rs"]
#[allow(dead_code, unreachable_pub)]
mod harness;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("readable corpus entry").path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 5, "{target}: only {} corpus inputs", inputs.len());
    for path in inputs {
        let data = std::fs::read(&path).expect("readable corpus file");
        check(&data);
    }
}

#[test]
fn decode_corpus() {
    replay("decode", harness::decode);
}

#[test]
fn datagram_corpus() {
    replay("datagram", harness::datagram);
}

#[test]
fn state_machine_corpus() {
    replay("state_machine", harness::state_machine);
}
