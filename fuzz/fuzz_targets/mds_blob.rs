//! FIDO MDS3 BLOBs: the JWS header and signer checks (no root configured, so nothing
//! verifies), and the payload reader with its bounds, fed directly.
#![no_main]

use fido_core::trust::MdsBlob;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(MdsBlob::verify(data, &[], 0).is_err());
    fido_core::trust::mds::fuzz_payload(data);
});
