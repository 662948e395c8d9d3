//! The invariants the fuzz targets check, one module per target.
//!
//! Each module's `check` takes the raw bytes libFuzzer generates and
//! panics when an invariant breaks. The same file is compiled into the
//! main crate's `tests/fuzz_corpus.rs`, which replays the committed corpus
//! and every crash ever found on stable Rust with plain `cargo test`.

pub mod call_flow;
pub mod prompt_file;
pub mod signature;
pub mod twiml;
pub mod webhook;
pub mod xml;
