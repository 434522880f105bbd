#![no_main]
//! See ftpwatch::fuzzing::reply.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ftpwatch::fuzzing::reply(data));
