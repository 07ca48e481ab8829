//! ELF headers and program headers are read from files the app controls.
#![no_main]
use libfuzzer_sys::fuzz_target;
use moat_sentry::loader::elf;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = elf::parse_header(data) {
        let _ = elf::parse_phdrs(&h, data.get(64..).unwrap_or(&[]));
    }
});
