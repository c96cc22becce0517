//! Authenticator responses, per command: the first byte picks the command whose typed
//! response decoder reads the rest (status byte + CBOR). A decoded response re-encodes
//! and decodes to the same bytes.
#![no_main]

use fido_core::commands::{
    decode_response, encode_response, AuthenticatorConfig, BioEnrollment, ClientPin, Command,
    CredentialManagement, GetAssertion, GetInfo, GetNextAssertion, LargeBlobs, MakeCredential,
    Reset, Selection,
};
use libfuzzer_sys::fuzz_target;

fn check<C: Command>(bytes: &[u8]) {
    if let Ok(resp) = decode_response::<C>(bytes) {
        let again = encode_response(&resp);
        let back = decode_response::<C>(&again).expect("our encoding decodes");
        assert_eq!(encode_response(&back), again);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    match which % 11 {
        0 => check::<MakeCredential>(bytes),
        1 => check::<GetAssertion>(bytes),
        2 => check::<GetNextAssertion>(bytes),
        3 => check::<GetInfo>(bytes),
        4 => check::<ClientPin>(bytes),
        5 => check::<Reset>(bytes),
        6 => check::<BioEnrollment>(bytes),
        7 => check::<CredentialManagement>(bytes),
        8 => check::<Selection>(bytes),
        9 => check::<LargeBlobs>(bytes),
        _ => check::<AuthenticatorConfig>(bytes),
    }
});
