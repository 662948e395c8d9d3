//! Replays every committed fuzz input through the fuzz targets' checks on
//! stable Rust: the seed corpus under `fuzz/corpus/<target>/` and every
//! crash the fuzzer ever found, under `fuzz/regressions/<target>/`. A crash
//! found once stays fixed without anyone running the fuzzer.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

/// Runs `check` on every file for `target`; fails naming each input that
/// panicked.
fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    let mut failed = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz.join(kind).join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.expect("readable entry").path()).collect();
        files.sort();
        for file in files.into_iter().filter(|f| f.is_file()) {
            let data = fs::read(&file).expect("readable input");
            replayed += 1;
            if panic::catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failed.push(file.display().to_string());
            }
        }
    }
    assert!(replayed > 0, "no committed inputs for {target}");
    assert!(failed.is_empty(), "{target} fails on {failed:#?}");
}

#[test]
fn webhook_inputs_pass() {
    replay("webhook", checks::webhook::check);
}

#[test]
fn signature_inputs_pass() {
    replay("signature", checks::signature::check);
}

#[test]
fn twiml_inputs_pass() {
    replay("twiml", checks::twiml::check);
}

#[test]
fn prompt_file_inputs_pass() {
    replay("prompt_file", checks::prompt_file::check);
}

#[test]
fn call_flow_inputs_pass() {
    replay("call_flow", checks::call_flow::check);
}
