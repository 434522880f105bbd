#![no_main]
//! See ftpwatch::fuzzing::capture_file.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpwatch::fuzzing::capture_file(data));
