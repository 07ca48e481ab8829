//! Boot and exit messages cross process boundaries; decoding must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use moat_proto::boot::{GoferBoot, SentryBoot, SentryExit};
use moat_proto::wire::Message;

fuzz_target!(|data: &[u8]| {
    let _ = SentryBoot::decode(data);
    let _ = GoferBoot::decode(data);
    let _ = SentryExit::decode(data);
});
