//! Structure-aware fuzz driver for the host and card state machines (test and
//! `fuzzing` builds only).
//!
//! A fuzz target turns its input into operations with [`decode_operations`] and replays
//! them with [`run`]. `run` panics only when an invariant breaks: a state machine
//! panicked, emitted bytes that do not parse, looped without bound, or an honest
//! host/card exchange did not deliver the payload intact.

use super::{
    ApduMode, CardConfig, CardOutput, CommandApdu, HostConfig, HostEvent, NfcCtapExchange,
    ResponseApdu, VirtualCard,
};

/// One step of a fuzz scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Start a new host CTAP exchange of `len` pattern bytes in the given mode.
    StartCtap {
        /// Extended (true) or short (false) mode.
        extended: bool,
        /// Message length (may exceed what fits).
        len: u16,
    },
    /// Start a new host SELECT exchange.
    StartSelect,
    /// Take the host's next command APDU and check it parses.
    HostTransmit,
    /// Feed arbitrary bytes to the host as the card's answer.
    HostResponse(Vec<u8>),
    /// Ask the host to cancel.
    Cancel,
    /// Replace the card, choosing a personality (taken modulo 3) and status updates.
    SetCard {
        /// 0 extended, 1 short-only, 2 quirky.
        personality: u8,
        /// Number of `9100` updates.
        status_updates: u8,
    },
    /// Feed arbitrary bytes to the card as a command APDU.
    CardApdu(Vec<u8>),
    /// Give the card an authenticator answer.
    CardAnswer(Vec<u8>),
    /// Tell the card the authenticator is still working (status byte).
    CardStatusUpdate(u8),
    /// Run an honest SELECT + CTAP echo exchange between the host and the card.
    Loopback {
        /// Host mode extended (true) or short (false).
        extended: bool,
        /// Message length.
        len: u16,
    },
}

/// Turns fuzzer bytes into operations (a tiny tag-length format; never fails).
pub fn decode_operations(mut bytes: &[u8]) -> Vec<Operation> {
    let mut ops = Vec::new();
    while let Some((&tag, rest)) = bytes.split_first() {
        bytes = rest;
        let mut take = |n: usize| -> Vec<u8> {
            let n = n.min(bytes.len());
            let (a, b) = bytes.split_at(n);
            bytes = b;
            a.to_vec()
        };
        let op = match tag % 10 {
            0 => {
                let b = take(3);
                Operation::StartCtap {
                    extended: b.first().is_some_and(|x| x & 1 == 1),
                    len: u16::from_be_bytes([
                        b.get(1).copied().unwrap_or(0),
                        b.get(2).copied().unwrap_or(0),
                    ]),
                }
            }
            1 => Operation::StartSelect,
            2 => Operation::HostTransmit,
            3 => {
                let n = take(1).first().copied().unwrap_or(0);
                Operation::HostResponse(take(usize::from(n)))
            }
            4 => Operation::Cancel,
            5 => {
                let b = take(2);
                Operation::SetCard {
                    personality: b.first().copied().unwrap_or(0),
                    status_updates: b.get(1).copied().unwrap_or(0),
                }
            }
            6 => {
                let n = take(1).first().copied().unwrap_or(0);
                Operation::CardApdu(take(usize::from(n)))
            }
            7 => {
                let n = take(1).first().copied().unwrap_or(0);
                Operation::CardAnswer(take(usize::from(n)))
            }
            8 => Operation::CardStatusUpdate(take(1).first().copied().unwrap_or(0)),
            _ => {
                let b = take(3);
                Operation::Loopback {
                    extended: b.first().is_some_and(|x| x & 1 == 1),
                    len: u16::from_be_bytes([
                        b.get(1).copied().unwrap_or(0),
                        b.get(2).copied().unwrap_or(0),
                    ]) % 8192,
                }
            }
        };
        ops.push(op);
    }
    ops
}

fn mode(extended: bool) -> ApduMode {
    if extended {
        ApduMode::Extended
    } else {
        ApduMode::Short
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn card_for(personality: u8, status_updates: u8) -> VirtualCard {
    let mut config = match personality % 3 {
        0 => CardConfig::extended(),
        1 => CardConfig::short_only(),
        _ => CardConfig::quirky(),
    };
    config.status_updates = usize::from(status_updates % 8);
    VirtualCard::new(config)
}

/// Replays operations against a host exchange and a virtual card.
///
/// # Panics
/// When an invariant of the state machines is broken (that is the point).
pub fn run(ops: &[Operation]) {
    let mut host: Option<NfcCtapExchange> = None;
    let mut card = card_for(0, 0);
    for op in ops {
        match op {
            Operation::StartCtap { extended, len } => {
                let config = HostConfig::new(mode(*extended));
                host = NfcCtapExchange::ctap(&pattern(usize::from(*len)), &config).ok();
            }
            Operation::StartSelect => {
                host = Some(NfcCtapExchange::select(&HostConfig::new(ApduMode::Short)));
            }
            Operation::HostTransmit => {
                if let Some(bytes) = host.as_mut().and_then(NfcCtapExchange::poll_transmit) {
                    assert!(
                        CommandApdu::parse(&bytes).is_ok(),
                        "host sent unparsable APDU"
                    );
                }
            }
            Operation::HostResponse(bytes) => {
                if let Some(h) = host.as_mut() {
                    let _ = h.handle_response(bytes);
                    while h.poll_event().is_some() {}
                }
            }
            Operation::Cancel => {
                if let Some(h) = host.as_mut() {
                    h.cancel();
                }
            }
            Operation::SetCard {
                personality,
                status_updates,
            } => card = card_for(*personality, *status_updates),
            Operation::CardApdu(bytes) => {
                if let CardOutput::Response(rsp) = card.handle_apdu(bytes) {
                    assert!(
                        ResponseApdu::parse(&rsp).is_ok(),
                        "card sent unparsable answer"
                    );
                }
            }
            Operation::CardAnswer(bytes) => {
                if let Some(rsp) = card.ctap_response(bytes) {
                    assert!(
                        ResponseApdu::parse(&rsp).is_ok(),
                        "card sent unparsable answer"
                    );
                }
            }
            Operation::CardStatusUpdate(byte) => {
                let status = super::ProcessingStatus::from_data(&[*byte]);
                if let Some(rsp) = card.status_update(status) {
                    assert!(
                        ResponseApdu::parse(&rsp).is_ok(),
                        "card sent unparsable answer"
                    );
                }
            }
            Operation::Loopback { extended, len } => {
                loopback(&mut card, mode(*extended), usize::from(*len));
            }
        }
    }
}

/// SELECT then one CTAP message echoed by the authenticator; asserts the payload
/// arrives intact whenever the card's personality can carry it.
fn loopback(card: &mut VirtualCard, mode: ApduMode, len: usize) {
    card.reset();
    let config = HostConfig::new(mode);
    let mut select = NfcCtapExchange::select(&config);
    let mut steps = 0usize;
    while let Some(cmd) = select.poll_transmit() {
        steps += 1;
        assert!(steps < 10_000, "SELECT did not terminate");
        let CardOutput::Response(rsp) = card.handle_apdu(&cmd) else {
            panic!("card treated SELECT as a CTAP request");
        };
        if select.handle_response(&rsp).is_err() {
            return;
        }
    }
    let message = pattern(len);
    let Ok(mut host) = NfcCtapExchange::ctap(&message, &config) else {
        return;
    };
    let mut answer = None;
    while let Some(cmd) = host.poll_transmit() {
        steps += 1;
        assert!(steps < 10_000, "CTAP exchange did not terminate");
        let rsp = match card.handle_apdu(&cmd) {
            CardOutput::Response(rsp) => rsp,
            CardOutput::CtapRequest(req) => {
                assert_eq!(req, message, "card reassembled a different message");
                card.ctap_response(&req).unwrap_or_default()
            }
            CardOutput::CancelRequested => panic!("honest host never cancels here"),
        };
        if host.handle_response(&rsp).is_err() {
            let extended_refused = mode == ApduMode::Extended && !card.config().extended_length;
            assert!(extended_refused, "honest exchange failed");
            return;
        }
        while let Some(ev) = host.poll_event() {
            if let HostEvent::Response(r) = ev {
                answer = Some(r);
            }
        }
    }
    assert_eq!(
        answer.as_deref(),
        Some(message.as_slice()),
        "echo did not come back"
    );
}
