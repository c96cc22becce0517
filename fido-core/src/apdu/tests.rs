use super::fuzzing::{decode_operations, run, Operation};
use super::*;

fn h(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    base16ct::mixed::decode_vec(clean).expect("hex in test data")
}

#[test]
fn status_word_is_lossless_for_every_value() {
    for v in 0..=u16::MAX {
        let sw = StatusWord::from_u16(v);
        assert_eq!(sw.to_u16(), v);
        assert_eq!(StatusWord::from_bytes((v >> 8) as u8, v as u8), sw);
    }
}

#[test]
fn status_word_names() {
    assert_eq!(StatusWord::from_u16(0x9000), StatusWord::Success);
    assert_eq!(StatusWord::from_u16(0x9100), StatusWord::StatusUpdate);
    assert_eq!(StatusWord::from_u16(0x6110), StatusWord::MoreData(0x10));
    assert_eq!(StatusWord::from_u16(0x6C20), StatusWord::WrongLe(0x20));
    assert_eq!(StatusWord::from_u16(0x6A82), StatusWord::FileNotFound);
    assert_eq!(StatusWord::from_u16(0x1234), StatusWord::Other(0x1234));
    assert!(StatusWord::WrongLength.to_string().contains("6700"));
    assert!(StatusWord::WrongLength.description().contains("extended"));
}

#[test]
fn encode_short_cases() {
    let c1 = CommandApdu::new(0x00, 0xA4, 0x04, 0x00);
    assert_eq!(c1.encode(LengthForm::Short).unwrap(), h("00A40400"));
    let c2 = c1.clone().with_le(256);
    assert_eq!(c2.encode(LengthForm::Short).unwrap(), h("00A4040000"));
    let c3 = c1.clone().with_data(vec![1, 2]);
    assert_eq!(c3.encode(LengthForm::Short).unwrap(), h("00A40400020102"));
    let c4 = c3.clone().with_le(5);
    assert_eq!(c4.encode(LengthForm::Short).unwrap(), h("00A4040002010205"));
}

#[test]
fn encode_extended_cases() {
    let base = CommandApdu::new(0x80, 0x10, 0x80, 0x00);
    assert_eq!(
        base.clone()
            .with_le(65_536)
            .encode(LengthForm::Extended)
            .unwrap(),
        h("80108000 000000")
    );
    assert_eq!(
        base.clone()
            .with_data(vec![4])
            .encode(LengthForm::Extended)
            .unwrap(),
        h("80108000 000001 04")
    );
    assert_eq!(
        base.clone()
            .with_data(vec![4])
            .with_le(65_536)
            .encode(LengthForm::Extended)
            .unwrap(),
        h("80108000 000001 04 0000")
    );
}

#[test]
fn encode_rejects_what_does_not_fit() {
    let big = CommandApdu::new(0, 0, 0, 0).with_data(vec![0; 256]);
    assert_eq!(
        big.encode(LengthForm::Short),
        Err(ApduError::DataTooLong {
            len: 256,
            max: 255,
            form: "short"
        })
    );
    assert!(big.encode(LengthForm::Extended).is_ok());
    let huge = CommandApdu::new(0, 0, 0, 0).with_data(vec![0; 65_536]);
    assert!(matches!(
        huge.encode(LengthForm::Extended),
        Err(ApduError::DataTooLong { max: 65_535, .. })
    ));
    let le = CommandApdu::new(0, 0, 0, 0).with_le(257);
    assert!(matches!(
        le.encode(LengthForm::Short),
        Err(ApduError::LeOutOfRange { le: 257, .. })
    ));
    let zero = CommandApdu::new(0, 0, 0, 0).with_le(0);
    assert!(matches!(
        zero.encode(LengthForm::Extended),
        Err(ApduError::LeOutOfRange { le: 0, .. })
    ));
    assert_eq!(le.encode_auto().unwrap(), h("00000000 000101"));
}

#[test]
fn parse_all_cases() {
    let (c, f) = CommandApdu::parse_with_form(&h("00A40400")).unwrap();
    assert_eq!((c.data.len(), c.le, f), (0, None, LengthForm::Short));
    let (c, _) = CommandApdu::parse_with_form(&h("00A4040000")).unwrap();
    assert_eq!(c.le, Some(256));
    let (c, _) = CommandApdu::parse_with_form(&h("00A40400 02 0102")).unwrap();
    assert_eq!((c.data, c.le), (vec![1, 2], None));
    let (c, _) = CommandApdu::parse_with_form(&h("00A40400 02 0102 00")).unwrap();
    assert_eq!(c.le, Some(256));
    let (c, f) = CommandApdu::parse_with_form(&h("80108000 000000")).unwrap();
    assert_eq!((c.le, f), (Some(65_536), LengthForm::Extended));
    let (c, f) = CommandApdu::parse_with_form(&h("80108000 000002 0102")).unwrap();
    assert_eq!((c.data, c.le, f), (vec![1, 2], None, LengthForm::Extended));
    let (c, _) = CommandApdu::parse_with_form(&h("80108000 000002 0102 0100")).unwrap();
    assert_eq!(c.le, Some(256));
}

#[test]
fn parse_rejects_malformed() {
    assert!(matches!(
        CommandApdu::parse(&h("00A404")),
        Err(ApduError::Truncated {
            needed: 4,
            got: 3,
            ..
        })
    ));
    // Lc says 3, only 2 bytes follow.
    assert!(matches!(
        CommandApdu::parse(&h("00A40400 03 0102")),
        Err(ApduError::Malformed { field: "Lc", .. })
    ));
    // Two bytes after short data.
    assert!(matches!(
        CommandApdu::parse(&h("00A40400 01 01 0000")),
        Err(ApduError::Malformed { field: "Le", .. })
    ));
    // Extended marker with one byte.
    assert!(matches!(
        CommandApdu::parse(&h("80108000 00 01")),
        Err(ApduError::Malformed { field: "Lc", .. })
    ));
    // Extended Lc 0 followed by data.
    assert!(matches!(
        CommandApdu::parse(&h("80108000 000000 01")),
        Err(ApduError::Malformed { field: "Lc", .. })
    ));
    // Extended Le of one byte.
    assert!(matches!(
        CommandApdu::parse(&h("80108000 000001 04 00")),
        Err(ApduError::Malformed { field: "Le", .. })
    ));
    assert!(matches!(
        ResponseApdu::parse(&[0x90]),
        Err(ApduError::Truncated {
            needed: 2,
            got: 1,
            ..
        })
    ));
}

#[test]
fn apdu_count_per_mode() {
    assert_eq!(ApduMode::Short.apdu_count(0), Ok(1));
    assert_eq!(ApduMode::Short.apdu_count(255), Ok(1));
    assert_eq!(ApduMode::Short.apdu_count(256), Ok(2));
    assert_eq!(ApduMode::Short.apdu_count(7609), Ok(30));
    assert_eq!(ApduMode::Extended.apdu_count(65_535), Ok(1));
    let err = ApduMode::Extended.apdu_count(65_536).unwrap_err();
    assert!(err
        .to_string()
        .contains("65536 bytes cannot be sent in extended mode"));
    assert!(!ApduMode::Short.fits(70_000));
}

#[test]
fn host_short_chaining_puts_le_only_on_last_block() {
    let msg: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
    let mut ex = NfcCtapExchange::ctap(&msg, &HostConfig::new(ApduMode::Short)).unwrap();
    let b1 = ex.poll_transmit().unwrap();
    assert!(ex.poll_transmit().is_none(), "must wait for the answer");
    assert_eq!(&b1[..5], &h("90108000FF")[..]);
    assert_eq!(b1.len(), 5 + 255, "no Le on a chained block");
    ex.handle_response(&h("9000")).unwrap();
    let b2 = ex.poll_transmit().unwrap();
    assert_eq!(b2.len(), 5 + 255);
    ex.handle_response(&h("9000")).unwrap();
    let b3 = ex.poll_transmit().unwrap();
    assert_eq!(&b3[..5], &h("801080005A")[..]);
    assert_eq!(b3.len(), 5 + 90 + 1);
    assert_eq!(b3.last(), Some(&0x00), "Le on the last block");
    ex.handle_response(&h("00 9000")).unwrap();
    assert_eq!(ex.poll_event(), Some(HostEvent::Response(vec![0])));
    assert!(ex.is_finished());
}

#[test]
fn host_extended_is_one_apdu() {
    let mut ex = NfcCtapExchange::ctap(&[0x04], &HostConfig::new(ApduMode::Extended)).unwrap();
    assert_eq!(ex.poll_transmit().unwrap(), h("80108000 000001 04 0000"));
}

#[test]
fn host_handles_9100_then_61xx_then_cancel() {
    let mut ex = NfcCtapExchange::ctap(&[0x04], &HostConfig::new(ApduMode::Short)).unwrap();
    assert_eq!(ex.poll_transmit().unwrap(), h("80108000 01 04 00"));
    ex.handle_response(&h("02 9100")).unwrap();
    assert_eq!(
        ex.poll_event(),
        Some(HostEvent::StatusUpdate(
            ProcessingStatus::UserPresenceNeeded
        ))
    );
    assert_eq!(ex.poll_transmit().unwrap(), h("80110000 00"));
    ex.handle_response(&h("01 9100")).unwrap();
    assert_eq!(
        ex.poll_event(),
        Some(HostEvent::StatusUpdate(ProcessingStatus::Processing))
    );
    ex.cancel();
    assert_eq!(ex.poll_transmit().unwrap(), h("80111100 00"));
    ex.handle_response(&h("2D 9000")).unwrap();
    assert_eq!(ex.poll_event(), Some(HostEvent::Response(vec![0x2D])));
}

#[test]
fn host_get_response_concatenates() {
    let mut ex = NfcCtapExchange::ctap(&[0x04], &HostConfig::new(ApduMode::Short)).unwrap();
    ex.poll_transmit().unwrap();
    ex.handle_response(&h("0001 6102")).unwrap();
    assert_eq!(ex.poll_transmit().unwrap(), h("00C00000 02"));
    ex.handle_response(&h("0203 6100")).unwrap();
    assert_eq!(ex.poll_transmit().unwrap(), h("00C00000 00"));
    ex.handle_response(&h("04 9000")).unwrap();
    assert_eq!(
        ex.poll_event(),
        Some(HostEvent::Response(vec![0, 1, 2, 3, 4]))
    );
}

#[test]
fn host_resends_with_le_after_6cxx() {
    let mut ex = NfcCtapExchange::select(&HostConfig::new(ApduMode::Short));
    assert_eq!(
        ex.poll_transmit().unwrap(),
        h("00A40400 08 A0000006472F0001 00")
    );
    ex.handle_response(&h("6C06")).unwrap();
    assert_eq!(
        ex.poll_transmit().unwrap(),
        h("00A40400 08 A0000006472F0001 06")
    );
    ex.handle_response(&h("5532465F5632 9000")).unwrap();
    assert_eq!(
        ex.poll_event(),
        Some(HostEvent::Selected(AppletVersion::U2fV2))
    );
}

#[test]
fn host_errors_are_typed_and_final() {
    let mut ex = NfcCtapExchange::ctap(&[0x04], &HostConfig::new(ApduMode::Short)).unwrap();
    assert!(matches!(
        ex.handle_response(&h("9000")),
        Err(ApduError::UnexpectedResponse { .. })
    ));
    ex.poll_transmit().unwrap();
    assert_eq!(
        ex.handle_response(&h("6A80")),
        Err(ApduError::Status {
            sw: StatusWord::WrongData,
            during: "NFCCTAP_MSG"
        })
    );
    assert!(ex.is_finished());
    assert!(ex.poll_transmit().is_none());
    assert!(ex.poll_event().is_none());
}

#[test]
fn host_select_rejects_9100() {
    let mut ex = NfcCtapExchange::select(&HostConfig::new(ApduMode::Short));
    ex.poll_transmit().unwrap();
    assert!(matches!(
        ex.handle_response(&h("9100")),
        Err(ApduError::Status {
            sw: StatusWord::StatusUpdate,
            ..
        })
    ));
}

#[test]
fn card_rejects_extended_when_short_only() {
    let mut card = VirtualCard::new(CardConfig::short_only());
    let sel = h("00A40400 08 A0000006472F0001 00");
    assert_eq!(
        card.handle_apdu(&sel),
        CardOutput::Response([b"FIDO_2_0".as_slice(), &[0x90, 0x00]].concat())
    );
    assert_eq!(
        card.handle_apdu(&h("80108000 000001 04 0000")),
        CardOutput::Response(h("6700"))
    );
    assert_eq!(
        card.handle_apdu(&h("80108000 01 04 00")),
        CardOutput::CtapRequest(vec![4])
    );
}

#[test]
fn card_status_words_for_bad_commands() {
    let mut card = VirtualCard::new(CardConfig::extended());
    let rsp = |card: &mut VirtualCard, s: &str| match card.handle_apdu(&h(s)) {
        CardOutput::Response(r) => r,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        rsp(&mut card, "80108000 01 04 00"),
        h("6985"),
        "not selected"
    );
    assert_eq!(rsp(&mut card, "00A40400 08 A0000006472F0002 00"), h("6A82"));
    assert_eq!(rsp(&mut card, "00A40C00 08 A0000006472F0001 00"), h("6A86"));
    assert_eq!(rsp(&mut card, "80A40400 08 A0000006472F0001 00"), h("6E00"));
    assert_eq!(rsp(&mut card, "00A404"), h("6700"));
    assert_eq!(
        rsp(&mut card, "00A40400 08 A0000006472F0001 00"),
        [b"FIDO_2_0".as_slice(), &[0x90, 0x00]].concat()
    );
    assert_eq!(rsp(&mut card, "80FF0000"), h("6D00"));
    assert_eq!(rsp(&mut card, "84108000 01 04 00"), h("6E00"));
    assert_eq!(rsp(&mut card, "80104000 01 04 00"), h("6A86"));
    assert_eq!(rsp(&mut card, "00C00000 00"), h("6985"), "nothing to get");
    assert_eq!(rsp(&mut card, "80110000 00"), h("6985"), "nothing to poll");
    assert_eq!(rsp(&mut card, "10A40400 08 A0000006472F0001"), h("6884"));
    assert_eq!(card.ctap_response(&[0]), None);
}

#[test]
fn card_chains_and_splits() {
    let mut card = VirtualCard::new(CardConfig::extended());
    card.handle_apdu(&h("00A40400 08 A0000006472F0001 00"));
    assert_eq!(
        card.handle_apdu(&h("90108000 02 0102")),
        CardOutput::Response(h("9000"))
    );
    assert_eq!(
        card.handle_apdu(&h("80108000 01 03 00")),
        CardOutput::CtapRequest(vec![1, 2, 3])
    );
    assert!(card.awaiting_authenticator());
    assert_eq!(
        card.handle_apdu(&h("80110000 00")),
        CardOutput::Response(h("6985"))
    );
    let answer: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    let first = card.ctap_response(&answer).unwrap();
    assert_eq!(first.len(), 256 + 2);
    assert_eq!(&first[256..], &h("612C")[..]);
    let CardOutput::Response(second) = card.handle_apdu(&h("00C00000 2C")) else {
        panic!("expected a response");
    };
    assert_eq!(&second[..44], &answer[256..]);
    assert_eq!(&second[44..], &h("9000")[..]);
}

#[test]
fn card_quirky_select_and_keepalive() {
    let mut card = VirtualCard::new(CardConfig::quirky());
    assert_eq!(
        card.handle_apdu(&h("00A40400 08 A0000006472F0001 00")),
        CardOutput::Response(h("6108"))
    );
    assert_eq!(
        card.handle_apdu(&h("00C00000 08")),
        CardOutput::Response([b"FIDO_2_0".as_slice(), &[0x90, 0x00]].concat())
    );
    assert_eq!(
        card.handle_apdu(&h("80108000 01 04 00")),
        CardOutput::CtapRequest(vec![4])
    );
    assert_eq!(card.ctap_response(&[0]), Some(h("02 9100")));
    assert_eq!(
        card.handle_apdu(&h("80110000 00")),
        CardOutput::Response(h("02 9100"))
    );
    assert_eq!(
        card.handle_apdu(&h("80110000 00")),
        CardOutput::Response(h("00 9000"))
    );
    // Without P1 = 0x80 the card must not answer 9100.
    card.handle_apdu(&h("80100000 01 04 00"));
    assert_eq!(card.ctap_response(&[0]), Some(h("00 9000")));
    // Cancel during status updates.
    card.handle_apdu(&h("80108000 01 04 00"));
    assert_eq!(card.ctap_response(&[0]), Some(h("02 9100")));
    assert_eq!(
        card.handle_apdu(&h("80111100 00")),
        CardOutput::Response(h("2D 9000"))
    );
}

#[test]
fn fuzz_driver_smoke() {
    let mut ops = Vec::new();
    for (i, len) in [0u16, 1, 255, 256, 1024, 7609].into_iter().enumerate() {
        for personality in 0..3 {
            ops.push(Operation::SetCard {
                personality,
                status_updates: i as u8,
            });
            ops.push(Operation::Loopback {
                extended: true,
                len,
            });
            ops.push(Operation::Loopback {
                extended: false,
                len,
            });
        }
    }
    ops.push(Operation::StartCtap {
        extended: false,
        len: 300,
    });
    ops.push(Operation::HostTransmit);
    ops.push(Operation::HostResponse(vec![0x61]));
    ops.push(Operation::CardApdu(vec![0x00, 0x00, 0x00]));
    ops.push(Operation::CardAnswer(vec![0x00]));
    ops.push(Operation::Cancel);
    run(&ops);
    // Arbitrary bytes decode and run without panicking.
    let junk: Vec<u8> = (0..2000u32)
        .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
        .collect();
    run(&decode_operations(&junk));
}

#[test]
fn host_resends_get_response_after_6cxx() {
    let mut ex = NfcCtapExchange::ctap(&[0x04], &HostConfig::new(ApduMode::Short)).unwrap();
    ex.poll_transmit().unwrap();
    ex.handle_response(&h("AA 6100")).unwrap();
    assert_eq!(ex.poll_transmit().unwrap(), h("00C00000 00"));
    ex.handle_response(&h("6C03")).unwrap();
    assert_eq!(ex.poll_transmit().unwrap(), h("00C00000 03"));
    ex.handle_response(&h("BBCCDD 9000")).unwrap();
    assert_eq!(ex.poll_event(), Some(HostEvent::Response(h("AABBCCDD"))));
}

#[test]
fn debug_output_does_not_show_payloads() {
    let secret = [0x5Au8; 40];
    let mut ex = NfcCtapExchange::ctap(&secret, &HostConfig::new(ApduMode::Short)).unwrap();
    let mut card = VirtualCard::new(CardConfig::extended());
    card.handle_apdu(&h("00A40400 08 A0000006472F0001 00"));
    let cmd = ex.poll_transmit().unwrap();
    assert!(matches!(card.handle_apdu(&cmd), CardOutput::CtapRequest(_)));
    let _ = card.ctap_response(&[0x5A; 300]);
    for text in [format!("{ex:?}"), format!("{card:?}")] {
        assert!(!text.contains("90"), "no byte lists: {text}");
        assert!(
            !text.to_lowercase().contains("5a"),
            "no payload bytes: {text}"
        );
    }
    assert!(format!("{card:?}").contains("GET RESPONSE"));
}

#[test]
fn fallback_hint_only_for_6700_on_nfcctap_msg() {
    let hint = ApduError::Status {
        sw: StatusWord::WrongLength,
        during: "NFCCTAP_MSG",
    };
    assert!(hint.suggests_short_mode());
    let other = ApduError::Status {
        sw: StatusWord::WrongData,
        during: "NFCCTAP_MSG",
    };
    assert!(!other.suggests_short_mode());
    let config = HostConfig {
        short_block_size: 100,
        ..HostConfig::new(ApduMode::Short)
    };
    assert_eq!(config.apdu_count(1000), Ok(10));
}
