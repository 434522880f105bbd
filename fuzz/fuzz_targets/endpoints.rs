#![no_main]
//! See ftpwatch::fuzzing::endpoints.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpwatch::fuzzing::endpoints(data));
