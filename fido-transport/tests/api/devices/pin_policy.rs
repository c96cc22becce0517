//! Item 7 (part): PIN-complexity keys (Token2 PIN+) and `maxPINLength`: the key
//! refuses with PIN_POLICY_VIOLATION (0x37); a transport PIN from
//! `PinPolicy::generate` fits.

use fido_core::pin::PinPolicy;
use fido_core::CtapStatus;
use fido_transport::softkey::SoftConfig;
use fido_transport::Error;

use super::soft_key;

#[test]
fn a_complexity_key_refuses_simple_pins_and_takes_a_generated_one() {
    let (mut key, _t, _c) = soft_key(SoftConfig {
        pin_complexity_policy: true,
        max_pin_length: Some(12),
        ..SoftConfig::default()
    });
    let info = key.info().unwrap().clone();
    assert_eq!(info.pin_complexity_policy, Some(true));
    for simple in ["12344321", "11112345", "98765432"] {
        let e = key.set_pin(simple).unwrap_err();
        assert!(
            matches!(e, Error::Ctap(CtapStatus::PinPolicyViolation)),
            "{simple}: {e}"
        );
    }
    // Longer than maxPINLength: refused too.
    assert!(matches!(
        key.set_pin("4821359748213"),
        Err(Error::Ctap(CtapStatus::PinPolicyViolation))
    ));
    let policy = PinPolicy::from_info(&info);
    let pin = policy.generate(16, &mut rand_core::OsRng).unwrap();
    assert_eq!(pin.len(), 12, "16 wanted, clamped to maxPINLength");
    key.set_pin(&pin).expect("a generated PIN meets the policy");
}
