//! Every input in fuzz/corpus/<target>/ (the seeds, and anything the fuzzers found and
//! we kept) replayed through its target's entry point on stable Rust: a regression
//! test for the fuzz targets, run by `cargo test`.

use std::path::Path;

use ftpwatch::fuzzing;

fn replay(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.unwrap().path();
        entry(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 0, "no corpus for {target}");
}

#[test]
fn line_framer() {
    replay("line_framer", fuzzing::line_framer);
}

#[test]
fn command() {
    replay("command", fuzzing::command);
}

#[test]
fn reply() {
    replay("reply", fuzzing::reply);
}

#[test]
fn endpoints() {
    replay("endpoints", fuzzing::endpoints);
}

#[test]
fn capture_file() {
    replay("capture_file", fuzzing::capture_file);
}

#[test]
fn pipeline() {
    replay("pipeline", fuzzing::pipeline);
}
