#![no_main]
//! See ftpwatch::fuzzing::command.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpwatch::fuzzing::command(data));
