#![no_main]
//! See ftpwatch::fuzzing::pipeline.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpwatch::fuzzing::pipeline(data));
