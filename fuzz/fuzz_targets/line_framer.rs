#![no_main]
//! See ftpwatch::fuzzing::line_framer.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpwatch::fuzzing::line_framer(data));
