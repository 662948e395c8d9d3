#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pinline_fuzz::webhook::check(data));
