//! Gofer requests and replies come from a peer that may be hostile: decoding must never
//! panic, and what decodes must re-encode to the same bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use moat_proto::gofer::{Reply, Request};
use moat_proto::wire::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = Request::decode(data) {
        assert_eq!(Request::decode(&r.encode()).ok(), Some(r));
    }
    if let Ok(r) = Reply::decode(data) {
        assert_eq!(Reply::decode(&r.encode()).ok(), Some(r));
    }
});
