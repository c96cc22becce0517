//! Integration tests: apdu.

use fido_core::apdu::{
    ApduError, ApduMode, AppletVersion, CardConfig, CardOutput, CommandApdu, HostConfig, HostEvent,
    LengthForm, NfcCtapExchange, ProcessingStatus, ResponseApdu, StatusWord, VirtualCard,
};
use proptest::prelude::*;

use super::support::{fixture_bytes, hex};

/// What one host <-> card run produced.
#[derive(Debug, Default)]
struct Trace {
    /// Every command APDU the host sent.
    sent: Vec<Vec<u8>>,
    /// Every CTAP message the card handed to the authenticator.
    requests: Vec<Vec<u8>>,
    /// Status updates seen by the host.
    updates: Vec<ProcessingStatus>,
    /// The final event (Response or Selected).
    done: Option<HostEvent>,
}

/// Runs an exchange against the card; the authenticator answers with `answer(request)`.
fn drive(
    host: &mut NfcCtapExchange,
    card: &mut VirtualCard,
    answer: impl Fn(&[u8]) -> Vec<u8>,
) -> Result<Trace, ApduError> {
    let mut trace = Trace::default();
    while let Some(cmd) = host.poll_transmit() {
        assert!(trace.sent.len() < 100_000, "exchange does not terminate");
        trace.sent.push(cmd.clone());
        let rsp = match card.handle_apdu(&cmd) {
            CardOutput::Response(rsp) => rsp,
            CardOutput::CtapRequest(req) => {
                let rsp = card.ctap_response(&answer(&req)).expect("request pending");
                trace.requests.push(req);
                rsp
            }
            CardOutput::CancelRequested => card.ctap_response(&[0x2D]).expect("cancel pending"),
        };
        host.handle_response(&rsp)?;
        while let Some(ev) = host.poll_event() {
            match ev {
                HostEvent::StatusUpdate(s) => trace.updates.push(s),
                other => trace.done = Some(other),
            }
        }
    }
    Ok(trace)
}

/// Runs an exchange against a scripted card that answers `responder(command)`.
fn drive_script(
    host: &mut NfcCtapExchange,
    mut responder: impl FnMut(&[u8]) -> Vec<u8>,
) -> Result<usize, ApduError> {
    let mut rounds = 0usize;
    while let Some(cmd) = host.poll_transmit() {
        rounds += 1;
        assert!(rounds < 100_000, "host keeps going");
        host.handle_response(&responder(&cmd))?;
    }
    Ok(rounds)
}

fn select(card: &mut VirtualCard, mode: ApduMode) -> AppletVersion {
    let mut host = NfcCtapExchange::select(&HostConfig::new(mode));
    let trace = drive(&mut host, card, |_| Vec::new()).expect("select works");
    match trace.done {
        Some(HostEvent::Selected(v)) => v,
        other => panic!("no selection: {other:?}"),
    }
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 256) as u8).collect()
}

fn reversed(req: &[u8]) -> Vec<u8> {
    req.iter().rev().copied().collect()
}

// ---------------------------------------------------------------------------------------
// libfido2 recorded NFC traffic

#[test]
fn fixture_nfc_init_is_a_u2f_select_answer() {
    let bytes = fixture_bytes("wiredata-ctap_nfc_init.hex");
    let rsp = ResponseApdu::parse(&bytes).unwrap();
    assert_eq!(rsp.data, b"U2F_V2");
    assert_eq!(rsp.sw, StatusWord::Success);
    assert_eq!(rsp.encode(), bytes);

    // Our SELECT command is the standard one, and the recorded answer completes it.
    let mut host = NfcCtapExchange::select(&HostConfig::new(ApduMode::Short));
    assert_eq!(
        host.poll_transmit().unwrap(),
        hex("00 A4 04 00 08 A0000006472F0001 00")
    );
    host.handle_response(&bytes).unwrap();
    assert_eq!(
        host.poll_event(),
        Some(HostEvent::Selected(AppletVersion::U2fV2))
    );

    // A virtual card with a U2F_V2 personality answers with exactly these bytes.
    let mut card = VirtualCard::new(CardConfig {
        version: AppletVersion::U2fV2,
        ..CardConfig::short_only()
    });
    assert_eq!(
        card.handle_apdu(&hex("00 A4 04 00 08 A0000006472F0001 00")),
        CardOutput::Response(bytes)
    );
}

#[test]
fn fixture_nfc_msg_acknowledges_a_four_block_chain() {
    // Four bare 9000: libfido2's answers to a chained NFCCTAP_MSG (three chained blocks
    // acknowledged, then an empty final answer).
    let bytes = fixture_bytes("wiredata-ctap_nfc_msg.hex");
    let answers: Vec<ResponseApdu> = bytes
        .chunks(2)
        .map(|c| ResponseApdu::parse(c).unwrap())
        .collect();
    assert_eq!(answers.len(), 4);
    assert!(answers
        .iter()
        .all(|a| a.data.is_empty() && a.sw == StatusWord::Success));

    let message = payload(1000);
    assert_eq!(ApduMode::Short.apdu_count(message.len()), Ok(4));
    let mut host = NfcCtapExchange::ctap(&message, &HostConfig::new(ApduMode::Short)).unwrap();
    let mut sent = Vec::new();
    for answer in bytes.chunks(2) {
        sent.push(host.poll_transmit().expect("a block to send"));
        host.handle_response(answer).unwrap();
    }
    assert!(host.poll_transmit().is_none());
    assert_eq!(host.poll_event(), Some(HostEvent::Response(Vec::new())));
    let data: Vec<u8> = sent
        .iter()
        .flat_map(|c| CommandApdu::parse(c).unwrap().data)
        .collect();
    assert_eq!(data, message);
}

#[test]
fn fixture_extended_apdu_parses_and_reencodes_identically() {
    let bytes = fixture_bytes("wiredata-ctap_extended_apdu.hex");
    assert_eq!(bytes.len(), 4 + 3 + 512 + 2);
    let (cmd, form) = CommandApdu::parse_with_form(&bytes).unwrap();
    assert_eq!(form, LengthForm::Extended);
    assert_eq!((cmd.cla, cmd.ins, cmd.p1, cmd.p2), (0x00, 0xA4, 0x04, 0x00));
    assert_eq!(cmd.data, vec![0xFF; 512]);
    assert_eq!(cmd.le, Some(65_536));
    assert_eq!(cmd.encode(LengthForm::Extended).unwrap(), bytes);
    assert_eq!(cmd.encode_auto().unwrap(), bytes);
    assert_eq!(
        cmd.encode(LengthForm::Short),
        Err(ApduError::DataTooLong {
            len: 512,
            max: 255,
            form: "short"
        })
    );
    // A short-only card refuses it with 6700; an extended one parses it and finds no
    // such applet.
    let mut short = VirtualCard::new(CardConfig::short_only());
    assert_eq!(short.handle_apdu(&bytes), CardOutput::Response(hex("6700")));
    let mut ext = VirtualCard::new(CardConfig::extended());
    assert_eq!(ext.handle_apdu(&bytes), CardOutput::Response(hex("6A82")));
}

// ---------------------------------------------------------------------------------------
// Host <-> card loops

const SIZES: [usize; 6] = [0, 1, 255, 256, 1024, 7609];

fn loop_case(config: CardConfig, mode: ApduMode) {
    let updates = config.status_updates;
    let status = config.status;
    for len in SIZES {
        let mut card = VirtualCard::new(config.clone());
        assert_eq!(select(&mut card, mode), config.version);
        let message = payload(len);
        let mut host = NfcCtapExchange::ctap(&message, &HostConfig::new(mode)).unwrap();
        let trace = drive(&mut host, &mut card, reversed)
            .unwrap_or_else(|e| panic!("{mode} mode, {len} bytes: {e}"));
        assert_eq!(
            trace.requests,
            vec![message.clone()],
            "{mode}, {len}: request"
        );
        assert_eq!(
            trace.done,
            Some(HostEvent::Response(reversed(&message))),
            "{mode}, {len}: response"
        );
        assert_eq!(trace.updates, vec![status; updates], "{mode}, {len}: 9100s");
        assert!(host.is_finished());
    }
}

#[test]
fn loop_extended_card() {
    loop_case(CardConfig::extended(), ApduMode::Extended);
    loop_case(CardConfig::extended(), ApduMode::Short);
}

#[test]
fn loop_short_only_card() {
    loop_case(CardConfig::short_only(), ApduMode::Short);
}

#[test]
fn loop_quirky_card() {
    loop_case(CardConfig::quirky(), ApduMode::Short);
    loop_case(CardConfig::quirky(), ApduMode::Extended);
}

#[test]
fn quirky_card_forces_get_response_rounds() {
    let mut card = VirtualCard::new(CardConfig::quirky());
    select(&mut card, ApduMode::Extended);
    let message = payload(1024);
    let mut host = NfcCtapExchange::ctap(&message, &HostConfig::new(ApduMode::Extended)).unwrap();
    let trace = drive(&mut host, &mut card, |r| r.to_vec()).unwrap();
    let get_responses = trace
        .sent
        .iter()
        .filter(|c| c.get(..4) == Some(&[0x00, 0xC0, 0x00, 0x00][..]))
        .count();
    // 1024 bytes in chunks of at most 200: 6 parts, so 5 GET RESPONSEs.
    assert_eq!(get_responses, 5);
    let polls = trace
        .sent
        .iter()
        .filter(|c| c.get(..4) == Some(&[0x80, 0x11, 0x00, 0x00][..]))
        .count();
    assert_eq!(
        polls, 2,
        "first 9100 answers the MSG, one poll per further update"
    );
    assert_eq!(trace.done, Some(HostEvent::Response(message)));
}

#[test]
fn extended_mode_against_short_only_card_fails_with_6700_then_short_works() {
    let mut card = VirtualCard::new(CardConfig::short_only());
    select(&mut card, ApduMode::Short);
    let message = payload(300);
    let mut host = NfcCtapExchange::ctap(&message, &HostConfig::new(ApduMode::Extended)).unwrap();
    let err = drive(&mut host, &mut card, reversed).unwrap_err();
    assert_eq!(
        err,
        ApduError::Status {
            sw: StatusWord::WrongLength,
            during: "NFCCTAP_MSG"
        }
    );
    let mut host = NfcCtapExchange::ctap(&message, &HostConfig::new(ApduMode::Short)).unwrap();
    let trace = drive(&mut host, &mut card, reversed).unwrap();
    assert_eq!(trace.done, Some(HostEvent::Response(reversed(&message))));
}

#[test]
fn le_only_on_the_last_block() {
    let message = payload(1024);
    let mut card = VirtualCard::new(CardConfig::short_only());
    select(&mut card, ApduMode::Short);
    let mut host = NfcCtapExchange::ctap(&message, &HostConfig::new(ApduMode::Short)).unwrap();
    let trace = drive(&mut host, &mut card, |_| vec![0x00]).unwrap();
    let blocks: Vec<(CommandApdu, LengthForm)> = trace
        .sent
        .iter()
        .map(|c| CommandApdu::parse_with_form(c).unwrap())
        .collect();
    assert_eq!(blocks.len(), 5);
    let (last, chained) = blocks.split_last().unwrap();
    for (b, form) in chained {
        assert_eq!(*form, LengthForm::Short);
        assert_eq!(b.cla, 0x90, "chaining bit on every block but the last");
        assert_eq!(b.le, None, "no Le on a chained block");
        assert_eq!(b.data.len(), 255);
        assert_eq!((b.ins, b.p1, b.p2), (0x10, 0x80, 0x00));
    }
    assert_eq!(last.0.cla, 0x80);
    assert_eq!(last.0.le, Some(256));
    assert_eq!(last.0.data.len(), 1024 - 4 * 255);
}

#[test]
fn cancel_after_status_update_yields_keepalive_cancel() {
    let mut card = VirtualCard::new(CardConfig {
        status_updates: 5,
        ..CardConfig::short_only()
    });
    select(&mut card, ApduMode::Short);
    let mut host = NfcCtapExchange::ctap(&[0x01], &HostConfig::new(ApduMode::Short)).unwrap();
    let cmd = host.poll_transmit().unwrap();
    let CardOutput::CtapRequest(req) = card.handle_apdu(&cmd) else {
        panic!("expected a CTAP request");
    };
    let rsp = card.ctap_response(&req).unwrap();
    host.handle_response(&rsp).unwrap();
    assert_eq!(
        host.poll_event(),
        Some(HostEvent::StatusUpdate(ProcessingStatus::Processing))
    );
    host.cancel();
    let cancel = host.poll_transmit().unwrap();
    assert_eq!(cancel, hex("80 11 11 00 00"));
    let CardOutput::Response(rsp) = card.handle_apdu(&cancel) else {
        panic!("expected a response");
    };
    host.handle_response(&rsp).unwrap();
    assert_eq!(host.poll_event(), Some(HostEvent::Response(vec![0x2D])));
}

// ---------------------------------------------------------------------------------------
// Misbehaving cards

#[test]
fn garbage_status_words_are_typed_errors_carrying_the_word() {
    for sw in [
        0x6F00u16, 0x1234, 0x6700, 0x6D00, 0x6E00, 0x6982, 0x6985, 0x6A86, 0x0000, 0xFFFF,
    ] {
        let mut host = NfcCtapExchange::ctap(&[0x04], &HostConfig::new(ApduMode::Short)).unwrap();
        let err = drive_script(&mut host, |_| sw.to_be_bytes().to_vec()).unwrap_err();
        assert_eq!(
            err,
            ApduError::Status {
                sw: StatusWord::from_u16(sw),
                during: "NFCCTAP_MSG"
            }
        );
        assert!(err.to_string().contains(&format!("{sw:04X}")));
    }
    // A chained block answered with anything but 9000 stops the exchange.
    let mut host = NfcCtapExchange::ctap(&payload(600), &HostConfig::new(ApduMode::Short)).unwrap();
    let err = drive_script(&mut host, |_| hex("6A80")).unwrap_err();
    assert!(matches!(
        err,
        ApduError::Status {
            sw: StatusWord::WrongData,
            during: "a chained NFCCTAP_MSG block"
        }
    ));
}

#[test]
fn truncated_responses_are_typed_errors() {
    for bad in [&[][..], &[0x90][..]] {
        let mut host = NfcCtapExchange::ctap(&[0x04], &HostConfig::new(ApduMode::Short)).unwrap();
        host.poll_transmit().unwrap();
        assert!(matches!(
            host.handle_response(bad),
            Err(ApduError::Truncated { needed: 2, .. })
        ));
        assert!(host.is_finished());
    }
}

#[test]
fn card_answering_61xx_forever_is_bounded() {
    let config = HostConfig::new(ApduMode::Short);
    // No data, always "more": round limit.
    let mut host = NfcCtapExchange::ctap(&[0x04], &config).unwrap();
    let err = drive_script(&mut host, |_| hex("6101")).unwrap_err();
    assert_eq!(
        err,
        ApduError::TooManyRounds {
            kind: "61xx GET RESPONSE",
            limit: config.max_get_response_rounds
        }
    );
    // Full chunks, always "more": size limit.
    let mut host = NfcCtapExchange::ctap(&[0x04], &config).unwrap();
    let err = drive_script(&mut host, |_| [vec![0xAA; 256], hex("6100")].concat()).unwrap_err();
    assert_eq!(
        err,
        ApduError::ResponseTooLarge {
            limit: config.max_response_len
        }
    );
}

#[test]
fn card_answering_9100_forever_is_bounded() {
    let config = HostConfig {
        max_status_updates: 50,
        ..HostConfig::new(ApduMode::Extended)
    };
    let mut host = NfcCtapExchange::ctap(&[0x04], &config).unwrap();
    let mut updates = 0;
    let err = drive_script(&mut host, |_| {
        updates += 1;
        hex("01 9100")
    })
    .unwrap_err();
    assert_eq!(
        err,
        ApduError::TooManyRounds {
            kind: "9100 status update",
            limit: 50
        }
    );
    assert_eq!(updates, 51);
}

#[test]
fn card_answering_select_with_61xx_forever_is_bounded() {
    let mut host = NfcCtapExchange::select(&HostConfig::new(ApduMode::Short));
    let err = drive_script(&mut host, |_| hex("6108")).unwrap_err();
    assert!(matches!(err, ApduError::TooManyRounds { .. }));
}

#[test]
fn oversized_message_is_refused_with_a_reason() {
    let big = vec![0u8; 65_536];
    for mode in [ApduMode::Extended, ApduMode::Short] {
        let err = NfcCtapExchange::ctap(&big, &HostConfig::new(mode)).unwrap_err();
        assert!(
            matches!(err, ApduError::MessageTooLarge { len: 65_536, mode: m, .. } if m == mode)
        );
        assert!(err.to_string().contains(&format!("{mode} mode")));
    }
}

// ---------------------------------------------------------------------------------------
// Round-trip properties

fn command_strategy(max_data: usize, max_le: u32) -> impl Strategy<Value = CommandApdu> {
    (
        any::<[u8; 4]>(),
        proptest::collection::vec(any::<u8>(), 0..=max_data),
        proptest::option::of(1..=max_le),
    )
        .prop_map(|([cla, ins, p1, p2], data, le)| CommandApdu {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
        })
}

proptest! {
    #[test]
    fn short_commands_round_trip(cmd in command_strategy(255, 256)) {
        let bytes = cmd.encode(LengthForm::Short).unwrap();
        prop_assert_eq!(CommandApdu::parse(&bytes).unwrap(), cmd.clone());
        let ext = cmd.encode(LengthForm::Extended).unwrap();
        prop_assert_eq!(CommandApdu::parse(&ext).unwrap(), cmd);
    }

    #[test]
    fn extended_commands_round_trip(cmd in command_strategy(1200, 65_536)) {
        let bytes = cmd.encode(LengthForm::Extended).unwrap();
        prop_assert_eq!(CommandApdu::parse(&bytes).unwrap(), cmd.clone());
        let auto = cmd.encode_auto().unwrap();
        prop_assert_eq!(CommandApdu::parse(&auto).unwrap(), cmd);
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics_and_is_canonical(
        bytes in proptest::collection::vec(any::<u8>(), 0..600)
    ) {
        if let Ok((cmd, form)) = CommandApdu::parse_with_form(&bytes) {
            prop_assert_eq!(cmd.encode(form).unwrap(), bytes.clone());
        }
        let _ = ResponseApdu::parse(&bytes);
    }

    #[test]
    fn responses_round_trip(data in proptest::collection::vec(any::<u8>(), 0..600), sw in any::<u16>()) {
        let rsp = ResponseApdu::new(data, StatusWord::from_u16(sw));
        prop_assert_eq!(ResponseApdu::parse(&rsp.encode()).unwrap(), rsp);
    }

    #[test]
    fn host_survives_arbitrary_answers(
        answers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..40),
        len in 0usize..1000,
        extended in any::<bool>(),
    ) {
        let mode = if extended { ApduMode::Extended } else { ApduMode::Short };
        let mut host = NfcCtapExchange::ctap(&payload(len), &HostConfig::new(mode)).unwrap();
        for answer in &answers {
            if host.poll_transmit().is_none() {
                break;
            }
            if host.handle_response(answer).is_err() {
                prop_assert!(host.is_finished());
                break;
            }
        }
    }

    #[test]
    fn card_survives_arbitrary_commands(
        cmds in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..40),
    ) {
        let mut card = VirtualCard::new(CardConfig::quirky());
        card.handle_apdu(&hex("00 A4 04 00 08 A0000006472F0001 00"));
        for cmd in &cmds {
            match card.handle_apdu(cmd) {
                CardOutput::Response(rsp) => prop_assert!(rsp.len() >= 2),
                CardOutput::CtapRequest(req) => {
                    let rsp = card.ctap_response(&req).unwrap();
                    prop_assert!(rsp.len() >= 2);
                }
                CardOutput::CancelRequested => {
                    let rsp = card.ctap_response(&[0x2D]).unwrap();
                    prop_assert!(rsp.len() >= 2);
                }
            }
        }
    }
}

#[test]
fn smaller_short_blocks_are_honoured_and_reassembled() {
    let config = HostConfig {
        short_block_size: 100,
        ..HostConfig::new(ApduMode::Short)
    };
    let message = payload(1024);
    let mut card = VirtualCard::new(CardConfig::short_only());
    select(&mut card, ApduMode::Short);
    let mut host = NfcCtapExchange::ctap(&message, &config).unwrap();
    let trace = drive(&mut host, &mut card, reversed).unwrap();
    let msgs: Vec<&Vec<u8>> = trace
        .sent
        .iter()
        .filter(|c| c.get(1) == Some(&0x10))
        .collect();
    assert_eq!(msgs.len(), config.apdu_count(message.len()).unwrap());
    assert_eq!(msgs.len(), 11);
    assert!(msgs[..10]
        .iter()
        .all(|c| CommandApdu::parse(c).unwrap().data.len() == 100));
    assert_eq!(trace.requests, vec![message.clone()]);
    assert_eq!(trace.done, Some(HostEvent::Response(reversed(&message))));
}

#[test]
fn slow_authenticator_reports_status_while_working_then_answers_a_poll() {
    let mut card = VirtualCard::new(CardConfig::short_only());
    select(&mut card, ApduMode::Short);
    let mut host = NfcCtapExchange::ctap(&[0x02], &HostConfig::new(ApduMode::Short)).unwrap();
    let cmd = host.poll_transmit().unwrap();
    assert_eq!(card.handle_apdu(&cmd), CardOutput::CtapRequest(vec![0x02]));
    // The authenticator waits for a touch: the card answers the MSG with 9100 02.
    let first = card
        .status_update(ProcessingStatus::UserPresenceNeeded)
        .unwrap();
    assert_eq!(first, hex("02 9100"));
    host.handle_response(&first).unwrap();
    assert_eq!(
        host.poll_event(),
        Some(HostEvent::StatusUpdate(
            ProcessingStatus::UserPresenceNeeded
        ))
    );
    // Polls while it works get the current status.
    let poll = host.poll_transmit().unwrap();
    assert_eq!(poll, hex("80 11 00 00 00"));
    let CardOutput::Response(rsp) = card.handle_apdu(&poll) else {
        panic!("expected a response");
    };
    host.handle_response(&rsp).unwrap();
    assert_eq!(card.status_update(ProcessingStatus::Processing), None);
    let poll = host.poll_transmit().unwrap();
    let CardOutput::Response(rsp) = card.handle_apdu(&poll) else {
        panic!("expected a response");
    };
    assert_eq!(rsp, hex("01 9100"));
    host.handle_response(&rsp).unwrap();
    // Touched: the result is kept for the next poll.
    assert_eq!(card.ctap_response(&[0x00, 0xA0]), None);
    let poll = host.poll_transmit().unwrap();
    let CardOutput::Response(rsp) = card.handle_apdu(&poll) else {
        panic!("expected a response");
    };
    host.handle_response(&rsp).unwrap();
    let events: Vec<HostEvent> = std::iter::from_fn(|| host.poll_event()).collect();
    assert_eq!(events.last(), Some(&HostEvent::Response(vec![0x00, 0xA0])));
}

#[test]
fn cancel_while_authenticator_works_reaches_the_authenticator() {
    let mut card = VirtualCard::new(CardConfig::extended());
    select(&mut card, ApduMode::Extended);
    let mut host = NfcCtapExchange::ctap(&[0x02], &HostConfig::new(ApduMode::Extended)).unwrap();
    let cmd = host.poll_transmit().unwrap();
    assert!(matches!(card.handle_apdu(&cmd), CardOutput::CtapRequest(_)));
    // Before a status update the card must not accept anything else.
    assert_eq!(
        card.handle_apdu(&hex("80 11 00 00 00")),
        CardOutput::Response(hex("6985"))
    );
    host.handle_response(
        &card
            .status_update(ProcessingStatus::UserPresenceNeeded)
            .unwrap(),
    )
    .unwrap();
    host.cancel();
    let cancel = host.poll_transmit().unwrap();
    assert_eq!(cancel, hex("80 11 11 00 00 00 00"));
    assert_eq!(card.handle_apdu(&cancel), CardOutput::CancelRequested);
    assert_eq!(card.status_update(ProcessingStatus::Processing), None);
    let rsp = card.ctap_response(&[0x2D]).unwrap();
    host.handle_response(&rsp).unwrap();
    let events: Vec<HostEvent> = std::iter::from_fn(|| host.poll_event()).collect();
    assert_eq!(events.last(), Some(&HostEvent::Response(vec![0x2D])));
    assert!(!card.awaiting_authenticator());
}

#[test]
fn no_status_update_without_get_response_support() {
    let mut card = VirtualCard::new(CardConfig::extended());
    select(&mut card, ApduMode::Short);
    let config = HostConfig {
        announce_get_response: false,
        ..HostConfig::new(ApduMode::Short)
    };
    let mut host = NfcCtapExchange::ctap(&[0x04], &config).unwrap();
    let cmd = host.poll_transmit().unwrap();
    assert_eq!(cmd, hex("80 10 00 00 01 04 00"));
    assert!(matches!(card.handle_apdu(&cmd), CardOutput::CtapRequest(_)));
    assert_eq!(card.status_update(ProcessingStatus::Processing), None);
    assert_eq!(card.ctap_response(&[0x00]), Some(hex("00 9000")));
}

// ---------------------------------------------------------------------------------------
// Issue 12 item 4: the CLA of GET RESPONSE (libfido2 #816: CTAP2 cards expecting 0x80)

/// The GET RESPONSE commands of a trace, by CLA.
fn get_responses_by_cla(trace: &Trace) -> (usize, usize) {
    let with = |cla: u8| {
        trace
            .sent
            .iter()
            .filter(|c| c.get(..4) == Some(&[cla, 0xC0, 0x00, 0x00][..]))
            .count()
    };
    (with(0x00), with(0x80))
}

#[test]
fn a_card_wanting_cla_80_on_get_response_gets_it_after_one_6e00() {
    let mut card = VirtualCard::new(CardConfig::get_response_only_with_cla(0x80));
    select(&mut card, ApduMode::Short);
    let message = payload(700);
    let mut host = NfcCtapExchange::ctap(&message, &HostConfig::new(ApduMode::Short)).unwrap();
    let trace = drive(&mut host, &mut card, |r| r.to_vec()).unwrap();
    assert_eq!(trace.done, Some(HostEvent::Response(message.clone())));
    // 700 bytes in 200-byte parts: the first with the message's answer, 3 GET RESPONSEs
    // with 0x80, after one 0x00 refused.
    assert_eq!(get_responses_by_cla(&trace), (1, 3));
    assert_eq!(host.get_response_cla(), 0x80);

    // The next message starts with the CLA learned: no refusal at all.
    let config = HostConfig {
        get_response_cla: host.get_response_cla(),
        ..HostConfig::new(ApduMode::Short)
    };
    let mut host = NfcCtapExchange::ctap(&message, &config).unwrap();
    let trace = drive(&mut host, &mut card, |r| r.to_vec()).unwrap();
    assert_eq!(trace.done, Some(HostEvent::Response(message)));
    assert_eq!(get_responses_by_cla(&trace), (0, 3));
}

#[test]
fn a_card_wanting_cla_00_is_switched_back_from_80() {
    let mut card = VirtualCard::new(CardConfig::get_response_only_with_cla(0x00));
    select(&mut card, ApduMode::Short);
    let message = payload(450);
    let config = HostConfig {
        get_response_cla: 0x80,
        ..HostConfig::new(ApduMode::Short)
    };
    let mut host = NfcCtapExchange::ctap(&message, &config).unwrap();
    let trace = drive(&mut host, &mut card, |r| r.to_vec()).unwrap();
    assert_eq!(trace.done, Some(HostEvent::Response(message)));
    assert_eq!(get_responses_by_cla(&trace), (2, 1));
    assert_eq!(host.get_response_cla(), 0x00);
}

#[test]
fn a_card_refusing_both_classes_fails_typed_after_one_switch() {
    let mut host = NfcCtapExchange::ctap(&payload(10), &HostConfig::new(ApduMode::Short)).unwrap();
    let mut n = 0;
    let err = drive_script(&mut host, |_| {
        n += 1;
        if n == 1 {
            vec![0xAA, 0x61, 0x10]
        } else {
            vec![0x6E, 0x00]
        }
    })
    .unwrap_err();
    assert_eq!(
        err,
        ApduError::Status {
            sw: StatusWord::ClaNotSupported,
            during: "GET RESPONSE"
        }
    );
    assert_eq!(n, 3, "MSG, GET RESPONSE 00, GET RESPONSE 80, then stop");
}
