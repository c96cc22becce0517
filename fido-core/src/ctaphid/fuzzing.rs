//! Structure-aware fuzzing support (only with `cfg(test)` or the `fuzzing` feature).
//!
//! A fuzz target turns its input into [`Operation`]s with [`Operation::decode_all`]
//! and replays them with [`run_operations`], which drives a [`HidClient`] and a
//! [`HidDevice`] connected by two queues and panics when an invariant breaks.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{
    Cid, Command, DeviceConfig, DeviceEvent, Event, HidClient, HidDevice, KeepaliveStatus,
    MAX_MESSAGE_LEN, REPORT_LEN,
};

/// One step of a fuzzing scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    /// The host starts CTAPHID_INIT with this nonce.
    HostInit([u8; 8]),
    /// The host sends a request of `len` bytes (reduced modulo 7610) filled with `fill`.
    HostSend {
        /// Command value.
        cmd: u8,
        /// Payload length.
        len: u16,
        /// Payload byte.
        fill: u8,
    },
    /// The host cancels.
    HostCancel,
    /// Raw bytes handed to the host as a report (any length).
    HostReceive(Vec<u8>),
    /// Raw bytes handed to the device as a report (any length).
    DeviceReceive(Vec<u8>),
    /// The device application answers its pending request.
    DeviceRespond {
        /// Payload length (reduced modulo 7610).
        len: u16,
        /// Payload byte.
        fill: u8,
    },
    /// The device application sends a keepalive.
    DeviceKeepalive(u8),
    /// Up to this many queued reports go from host to device.
    DeliverToDevice(u8),
    /// Up to this many queued reports go from device to host.
    DeliverToHost(u8),
    /// Time passes; both sides' timeouts are serviced.
    Tick(u16),
}

impl Operation {
    /// Decodes a byte string into operations (never fails; stops when bytes run out).
    pub fn decode_all(mut bytes: &[u8]) -> Vec<Operation> {
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
                    let mut nonce = [0u8; 8];
                    for (d, s) in nonce.iter_mut().zip(take(8)) {
                        *d = s;
                    }
                    Operation::HostInit(nonce)
                }
                1 => {
                    let b = take(4);
                    let g = |i: usize| b.get(i).copied().unwrap_or(0);
                    Operation::HostSend {
                        cmd: g(0),
                        len: u16::from_be_bytes([g(1), g(2)]),
                        fill: g(3),
                    }
                }
                2 => Operation::HostCancel,
                3 | 4 => {
                    // Mostly well-sized reports, sometimes odd sizes.
                    let size = take(1).first().map_or(0, |&s| {
                        if s < 0xf0 {
                            REPORT_LEN
                        } else {
                            usize::from(s - 0xf0) * 5
                        }
                    });
                    let data = take(size);
                    if tag % 10 == 3 {
                        Operation::HostReceive(data)
                    } else {
                        Operation::DeviceReceive(data)
                    }
                }
                5 => {
                    let b = take(3);
                    let g = |i: usize| b.get(i).copied().unwrap_or(0);
                    Operation::DeviceRespond {
                        len: u16::from_be_bytes([g(0), g(1)]),
                        fill: g(2),
                    }
                }
                6 => Operation::DeviceKeepalive(take(1).first().copied().unwrap_or(1)),
                7 => Operation::DeliverToDevice(take(1).first().copied().unwrap_or(1)),
                8 => Operation::DeliverToHost(take(1).first().copied().unwrap_or(1)),
                _ => {
                    let b = take(2);
                    let g = |i: usize| b.get(i).copied().unwrap_or(0);
                    Operation::Tick(u16::from_be_bytes([g(0), g(1)]))
                }
            };
            ops.push(op);
        }
        ops
    }
}

fn len_of(len: u16) -> usize {
    usize::from(len) % (MAX_MESSAGE_LEN + 1)
}

fn is_one_of(payload: &[u8], sent: &[(usize, u8)]) -> bool {
    sent.iter()
        .any(|&(len, fill)| payload.len() == len && payload.iter().all(|&b| b == fill))
}

fn check_progress(progress: Option<(usize, usize)>) {
    if let Some((got, declared)) = progress {
        assert!(got <= declared, "reassembled {got} > declared {declared}");
        assert!(declared <= MAX_MESSAGE_LEN);
    }
}

/// What a replay achieved, so scripted scenarios can check they exercised something.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Complete requests the device handed to its application.
    pub requests: usize,
    /// Complete responses the host reported (any command).
    pub responses: usize,
    /// Channels allocated by INIT on the host side.
    pub inits: usize,
    /// Transactions the host ended with `Cancelled`, `Error` or `Failed`.
    pub aborted: usize,
}

/// Replays `ops` against a connected host and device, asserting invariants:
/// no panic; never more reassembled than declared and never more than 7609 bytes;
/// while only the two state machines talk (no raw reports injected), every request the
/// device sees and every response the host sees is byte-for-byte what the other side
/// sent; every timeout deadline, once serviced, ends what it guarded.
pub fn run_operations(ops: &[Operation]) -> Outcome {
    let mut outcome = Outcome::default();
    let mut now = Instant::now();
    let mut host = HidClient::new(Duration::from_millis(300));
    let mut dev = HidDevice::new(DeviceConfig::default());
    let mut to_device: VecDeque<[u8; REPORT_LEN]> = VecDeque::new();
    let mut to_host: VecDeque<[u8; REPORT_LEN]> = VecDeque::new();
    let mut clean = true;
    // Everything each side ever sent, as (length, fill byte): a late answer to an
    // abandoned transaction may legitimately arrive during the next one.
    let mut sent_requests: Vec<(usize, u8)> = Vec::new();
    let mut sent_responses: Vec<(usize, u8)> = Vec::new();
    let mut pending: Option<Cid> = None;

    for op in ops {
        match op {
            Operation::HostInit(nonce) => {
                let _ = host.init(*nonce, now);
            }
            Operation::HostSend { cmd, len, fill } => {
                let payload = vec![*fill; len_of(*len)];
                if host.send(Command::from_u8(*cmd), &payload, now).is_ok() {
                    sent_requests.push((payload.len(), *fill));
                }
            }
            Operation::HostCancel => {
                let _ = host.cancel(now);
            }
            Operation::HostReceive(bytes) => {
                clean = false;
                let _ = host.handle_report(bytes, now);
            }
            Operation::DeviceReceive(bytes) => {
                clean = false;
                let _ = dev.handle_report(bytes, now);
            }
            Operation::DeviceRespond { len, fill } => {
                if let Some(cid) = pending {
                    let payload = vec![*fill; len_of(*len)];
                    if dev.respond(cid, Command::Cbor, &payload).is_ok() {
                        sent_responses.push((payload.len(), *fill));
                        pending = None;
                    }
                }
            }
            Operation::DeviceKeepalive(status) => {
                if let Some(cid) = pending {
                    let _ = dev.send_keepalive(cid, KeepaliveStatus::from_u8(*status));
                }
            }
            Operation::DeliverToDevice(n) => {
                for _ in 0..*n {
                    let Some(r) = to_device.pop_front() else {
                        break;
                    };
                    let _ = dev.handle_report(&r, now);
                }
            }
            Operation::DeliverToHost(n) => {
                for _ in 0..*n {
                    let Some(r) = to_host.pop_front() else { break };
                    let _ = host.handle_report(&r, now);
                }
            }
            Operation::Tick(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                if let Some(t) = host.poll_timeout() {
                    host.handle_timeout(now);
                    if now >= t {
                        assert!(host.is_idle(), "host transaction survived its deadline");
                    }
                }
                if let Some(t) = dev.poll_timeout() {
                    dev.handle_timeout(now);
                    if now >= t {
                        assert!(dev.poll_timeout().is_none(), "device kept a stale message");
                    }
                }
            }
        }
        while let Some(r) = host.poll_transmit() {
            to_device.push_back(r);
        }
        while let Some(r) = dev.poll_transmit() {
            to_host.push_back(r);
        }
        check_progress(host.progress());
        check_progress(dev.progress());
        while let Some(ev) = dev.poll_event() {
            match ev {
                DeviceEvent::Request { cid, cmd, payload } => {
                    assert!(payload.len() <= MAX_MESSAGE_LEN);
                    if clean && cmd != Command::Init {
                        assert!(is_one_of(&payload, &sent_requests), "request corrupted");
                    }
                    assert_eq!(dev.busy_channel(), Some(cid));
                    pending = Some(cid);
                    outcome.requests += 1;
                }
                DeviceEvent::Cancel { .. } => {}
            }
        }
        while let Some(ev) = host.poll_event() {
            match ev {
                Event::Response { cmd, payload } => {
                    assert!(payload.len() <= MAX_MESSAGE_LEN);
                    if clean && cmd == Command::Cbor {
                        assert!(is_one_of(&payload, &sent_responses), "response corrupted");
                    }
                    assert!(host.is_idle());
                    outcome.responses += 1;
                }
                Event::Init(resp) => {
                    assert!(resp.cid.is_allocatable());
                    assert_eq!(host.channel(), Some(resp.cid));
                    outcome.inits += 1;
                }
                Event::Keepalive(_) => {}
                Event::Cancelled | Event::Error(_) | Event::Failed(_) => {
                    assert!(host.is_idle());
                    outcome.aborted += 1;
                }
            }
        }
        // Bounded queues: at most a few messages' worth of reports in flight.
        assert!(to_device.len() <= 4096 && to_host.len() <= 4096);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn scripted_round_trip() {
        let outcome = run_operations(&[
            Operation::HostInit([1; 8]),
            Operation::DeliverToDevice(1),
            Operation::DeliverToHost(1),
            Operation::HostSend {
                cmd: 0x10,
                len: 1000,
                fill: 3,
            },
            Operation::DeliverToDevice(255),
            Operation::DeviceKeepalive(2),
            Operation::DeviceRespond { len: 300, fill: 9 },
            Operation::DeliverToHost(255),
            Operation::Tick(1000),
        ]);
        assert_eq!(
            outcome,
            Outcome {
                requests: 1,
                responses: 1,
                inits: 1,
                aborted: 0
            }
        );
    }

    #[test]
    fn scripted_timeout_and_late_delivery() {
        let outcome = run_operations(&[
            Operation::HostInit([2; 8]),
            Operation::DeliverToDevice(1),
            Operation::DeliverToHost(1),
            Operation::HostSend {
                cmd: 0x10,
                len: 200,
                fill: 1,
            },
            Operation::DeliverToDevice(1),
            Operation::Tick(600),
            Operation::DeliverToDevice(255),
            Operation::DeliverToHost(255),
        ]);
        // Host gave up; device timed out the half message and answered MSG_TIMEOUT,
        // which the idle host ignores.
        assert_eq!(outcome.inits, 1);
        assert_eq!(outcome.requests, 0);
        assert_eq!(outcome.aborted, 1);
    }

    #[test]
    fn decode_all_never_fails() {
        assert_eq!(Operation::decode_all(&[]), vec![]);
        assert_eq!(Operation::decode_all(&[2]), vec![Operation::HostCancel]);
        assert_eq!(
            Operation::decode_all(&[3, 0xf1, 9, 9, 9, 9, 9, 9]),
            vec![Operation::HostReceive(vec![9; 5]), Operation::Tick(0)]
        );
    }

    fn operation() -> impl Strategy<Value = Operation> {
        prop_oneof![
            any::<[u8; 8]>().prop_map(Operation::HostInit),
            (
                prop_oneof![Just(0x10u8), Just(0x01), Just(0x03), any::<u8>()],
                0u16..8000,
                any::<u8>()
            )
                .prop_map(|(cmd, len, fill)| Operation::HostSend { cmd, len, fill }),
            Just(Operation::HostCancel),
            proptest::collection::vec(any::<u8>(), 60..68).prop_map(Operation::HostReceive),
            proptest::collection::vec(any::<u8>(), 60..68).prop_map(Operation::DeviceReceive),
            (0u16..8000, any::<u8>())
                .prop_map(|(len, fill)| Operation::DeviceRespond { len, fill }),
            any::<u8>().prop_map(Operation::DeviceKeepalive),
            any::<u8>().prop_map(Operation::DeliverToDevice),
            any::<u8>().prop_map(Operation::DeliverToHost),
            (0u16..800).prop_map(Operation::Tick),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn random_bytes_keep_invariants(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            run_operations(&Operation::decode_all(&bytes));
        }

        #[test]
        fn structured_operations_keep_invariants(
            ops in proptest::collection::vec(operation(), 0..60)
        ) {
            run_operations(&ops);
        }
    }
}
