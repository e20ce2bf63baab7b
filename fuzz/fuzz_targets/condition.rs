#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lethe::fuzzing::condition(data));
