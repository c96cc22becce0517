//! PIN rules (lengths, minimum, padding, hashing) and redacted `Debug` output.

use super::*;

#[test]
fn pin_lengths_count_code_points_and_bytes() {
    // 4 code points of 2 bytes each: fine.
    assert_eq!(pin("éééé").code_points(), 4);
    assert_eq!(pin("😀😀😀😀").as_str().len(), 16);
    assert_eq!(
        Pin::new("ééé").err(),
        Some(PinError::TooShort { min: 4, actual: 3 })
    );
    assert_eq!(
        Pin::new("").err(),
        Some(PinError::TooShort { min: 4, actual: 0 })
    );
    // 63 bytes fine, 64 too long (ASCII and 3-byte characters).
    assert!(Pin::new(&"1".repeat(63)).is_ok());
    assert_eq!(
        Pin::new(&"1".repeat(64)).err(),
        Some(PinError::TooLong {
            max: 63,
            actual: 64
        })
    );
    assert!(Pin::new(&"€".repeat(21)).is_ok());
    assert_eq!(
        Pin::new(&"€".repeat(22)).err(),
        Some(PinError::TooLong {
            max: 63,
            actual: 66
        })
    );
    assert_eq!(Pin::new("1234\0").err(), Some(PinError::ContainsNul));
}

#[test]
fn pin_minimum_comes_from_the_key_but_never_below_four() {
    assert_eq!(
        Pin::with_min_length("12345", 6).err(),
        Some(PinError::TooShort { min: 6, actual: 5 })
    );
    assert!(Pin::with_min_length("123456", 6).is_ok());
    assert_eq!(
        Pin::with_min_length("123", 2).err(),
        Some(PinError::TooShort { min: 4, actual: 3 })
    );
    let p = pin("1234");
    assert_eq!(
        p.check_min_length(8),
        Err(PinError::TooShort { min: 8, actual: 4 })
    );
    assert_eq!(p.check_min_length(4), Ok(()));
}

#[test]
fn pin_padding_and_hash() {
    let p = pin("héllo");
    let padded = p.padded();
    assert_eq!(padded.len(), 64);
    assert_eq!(&padded[..6], "héllo".as_bytes());
    assert!(padded[6..].iter().all(|&b| b == 0));
    let digest = Sha256::digest("héllo".as_bytes());
    assert_eq!(&p.pin_hash()[..], &digest[..16]);
    // A 63-byte PIN still leaves its terminating zero.
    let long = pin(&"7".repeat(63));
    assert_eq!(long.padded()[63], 0);
}

#[test]
fn pin_try_from_string() {
    assert!(Pin::try_from(String::from("2468")).is_ok());
    assert_eq!(
        Pin::try_from("24").err(),
        Some(PinError::TooShort { min: 4, actual: 2 })
    );
}

#[test]
fn debug_output_does_not_leak_secrets() {
    let p = pin("271828");
    let shown = format!("{p:?}");
    assert!(!shown.contains("271828"), "{shown}");

    let secret_bytes = [0xabu8; 32];
    let shared = SharedSecret::from_bytes(PinUvAuthProtocol::One, &secret_bytes).expect("32");
    let token = PinUvAuthToken::from_bytes(
        PinUvAuthProtocol::Two,
        &secret_bytes,
        Permissions::GET_ASSERTION,
        Some("rp.example".into()),
    )
    .expect("token");
    let ka = AuthenticatorKeyAgreement::from_secret_bytes(&arr32(EC_PRIV)).expect("key");
    let req = pin_token_request(
        PinUvAuthProtocol::One,
        &device_key(),
        &p,
        &mut platform_rng(),
    )
    .expect("request");
    for shown in [format!("{shared:?}"), format!("{token:?}")] {
        assert!(!shown.to_lowercase().contains("abab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
    // The private scalar 74 52 e5 99 … in neither hex nor decimal.
    let shown = format!("{ka:?}");
    assert!(!shown.to_lowercase().contains("7452e599"), "{shown}");
    assert!(!shown.contains("116, 82, 229, 153"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
    // The shared secret c4 2a 03 9d … in neither hex nor decimal.
    let shown = format!("{req:?}");
    assert!(!shown.to_lowercase().contains("c42a039d"), "{shown}");
    assert!(!shown.contains("196, 42, 3, 157"), "{shown}");
    assert!(shown.contains("redacted"), "{shown}");
    // The token's non-secret metadata is still shown.
    assert!(format!("{token:?}").contains("rp.example"));
}
