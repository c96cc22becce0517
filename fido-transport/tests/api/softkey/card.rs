//! The software key as a virtual NFC card (vpcd frames, no socket).

use super::*;

fn card_exchange(
    card: &mut fido_transport::nfc::VpcdCard,
    mut ex: fido_core::apdu::NfcCtapExchange,
) -> Vec<u8> {
    use fido_core::apdu::HostEvent;
    let mut answer = None;
    let mut guard = 0;
    while !ex.is_finished() {
        guard += 1;
        assert!(guard < 1000, "exchange does not finish");
        if let Some(apdu) = ex.poll_transmit() {
            let reply = card.handle_frame(&apdu).expect("card answers an APDU");
            ex.handle_response(&reply).expect("host accepts the reply");
        }
        while let Some(ev) = ex.poll_event() {
            if let HostEvent::Response(bytes) = ev {
                answer = Some(bytes);
            }
        }
    }
    while let Some(ev) = ex.poll_event() {
        if let HostEvent::Response(bytes) = ev {
            answer = Some(bytes);
        }
    }
    answer.unwrap_or_default()
}

#[test]
fn runs_as_a_virtual_card_in_every_reader_mode() {
    use fido_core::apdu::{ApduMode, CardConfig, HostConfig, NfcCtapExchange};
    use fido_transport::nfc::VpcdCard;
    for (card_config, mode) in [
        (CardConfig::extended(), ApduMode::Extended),
        (CardConfig::short_only(), ApduMode::Short),
        (CardConfig::quirky(), ApduMode::Short),
    ] {
        let h = harness();
        let clock = h.clock.clone();
        let mut card = VpcdCard::new(card_config, h.auth);
        assert_eq!(card.handle_frame(&[0x01]), None, "power on");
        let host = HostConfig::new(mode);
        card_exchange(&mut card, NfcCtapExchange::select(&host));
        let info = card_exchange(
            &mut card,
            NfcCtapExchange::ctap(&encode_request(&GetInfo), &host).expect("exchange"),
        );
        assert_eq!(
            decode_response::<GetInfo>(&info).expect("info").aaguid,
            AAGUID
        );
        // A request and answer longer than one short APDU.
        let mut mc = MakeCredential::new(
            cdh(1),
            rp(RP),
            UserEntity {
                id: vec![1; 64],
                name: Some("n".repeat(120)),
                display_name: Some("d".repeat(120)),
            },
            vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
        );
        mc.options.rk = Some(true);
        let reply = card_exchange(
            &mut card,
            NfcCtapExchange::ctap(&encode_request(&mc), &host).expect("exchange"),
        );
        let mc = decode_response::<MakeCredential>(&reply).expect("mc over NFC");
        assert!(mc.auth_data.len() > 100);
        let obj = AttestationObject::from_parts(&mc.fmt, &mc.auth_data, &mc.att_stmt).expect("obj");
        obj.verify(&cdh(1)).expect("attestation verifies");
        // A card power-up opens the reset window.
        clock.advance(Duration::from_secs(20));
        let r = card_exchange(
            &mut card,
            NfcCtapExchange::ctap(&encode_request(&Reset), &host).expect("exchange"),
        );
        assert_eq!(r, vec![CtapStatus::NotAllowed.to_u8()]);
        assert_eq!(card.handle_frame(&[0x01]), None, "power cycle");
        card_exchange(&mut card, NfcCtapExchange::select(&host));
        let r = card_exchange(
            &mut card,
            NfcCtapExchange::ctap(&encode_request(&Reset), &host).expect("exchange"),
        );
        assert_eq!(r, vec![0x00]);
    }
}

#[test]
fn preset_pin_is_usable_over_ctap() {
    let mut h = harness();
    h.auth.preset_pin("24680").expect("preset");
    assert!(h.auth.preset_pin("13579").is_err(), "only once");
    h.token(2, "24680", Some(Permissions::GET_ASSERTION), None)
        .expect("token with preset PIN");
    let mut h = harness();
    assert!(h.auth.preset_pin("12").is_err(), "too short");
}
