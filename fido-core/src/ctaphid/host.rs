//! The host side of CTAPHID: channel allocation, one request at a time, response
//! reassembly, keepalives, cancel and timeouts.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{
    fragment, Cid, Command, HidError, HidErrorCode, InitResponse, KeepaliveStatus, Packet,
    Reassembly, INIT_DATA_LEN, INIT_RESPONSE_LEN, NONCE_LEN, REPORT_LEN,
};

/// Default for how long [`HidClient`] waits for the next report of a transaction.
/// Keys send a keepalive about every 100 ms while they work, so silence for this long
/// means the key or the link is gone.
pub const DEFAULT_INACTIVITY_TIMEOUT: Duration = Duration::from_millis(1500);

/// CTAP2_ERR_KEEPALIVE_CANCEL: the status a key answers a cancelled request with.
const STATUS_KEEPALIVE_CANCEL: u8 = 0x2d;

/// What the host state machine reports. `Keepalive` may come any number of times during
/// a transaction; every transaction ends with exactly one of the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The key is still working on the request; `UpNeeded` means "touch your key".
    Keepalive(KeepaliveStatus),
    /// CTAPHID_INIT succeeded; the channel is now [`InitResponse::cid`].
    Init(InitResponse),
    /// The complete response to the request.
    Response {
        /// The response command (the same as the request's).
        cmd: Command,
        /// The response payload, exactly BCNT bytes.
        payload: Vec<u8>,
    },
    /// The request was cancelled: either the key answered it with
    /// CTAP2_ERR_KEEPALIVE_CANCEL after [`HidClient::cancel`], or it was cancelled
    /// before it had been fully handed to the transport.
    Cancelled,
    /// The key answered with CTAPHID_ERROR. [`HidErrorCode::is_retryable`] tells
    /// whether the request may be sent again later.
    Error(HidErrorCode),
    /// The transaction was aborted on our side: a protocol violation by the key
    /// (sequence, length, unexpected command) or a timeout.
    Failed(HidError),
}

#[derive(Clone, Debug)]
struct Transaction {
    /// Channel the response is expected on (broadcast for INIT).
    cid: Cid,
    cmd: Command,
    /// For INIT: the nonce sent.
    nonce: Option<[u8; NONCE_LEN]>,
    deadline: Instant,
    rx: Option<Reassembly>,
    cancel_requested: bool,
    /// Whether any report of the request has been handed to the transport.
    sent_any: bool,
}

/// The host-side CTAPHID state machine (no IO, no clock).
///
/// Drive it with [`init`](Self::init) / [`send`](Self::send) /
/// [`cancel`](Self::cancel), feed every report read from the device to
/// [`handle_report`](Self::handle_report), write everything from
/// [`poll_transmit`](Self::poll_transmit), call [`handle_timeout`](Self::handle_timeout)
/// when [`poll_timeout`](Self::poll_timeout) has passed, and read outcomes from
/// [`poll_event`](Self::poll_event).
///
/// The timeout is an *inactivity* timeout: every report of the transaction (including
/// keepalives) moves the deadline. An overall limit (e.g. how long to wait for a touch)
/// belongs to the caller, who can [`cancel`](Self::cancel).
#[derive(Debug)]
pub struct HidClient {
    cid: Option<Cid>,
    timeout: Duration,
    transaction: Option<Transaction>,
    transmit: VecDeque<[u8; REPORT_LEN]>,
    events: VecDeque<Event>,
}

impl HidClient {
    /// A client with no channel yet and the given inactivity timeout.
    pub fn new(timeout: Duration) -> Self {
        HidClient {
            cid: None,
            timeout,
            transaction: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// A client that reuses an already allocated channel.
    pub fn with_channel(cid: Cid, timeout: Duration) -> Result<Self, HidError> {
        if !cid.is_allocatable() {
            return Err(HidError::InvalidChannel { cid: cid.0 });
        }
        let mut client = HidClient::new(timeout);
        client.cid = Some(cid);
        Ok(client)
    }

    /// The allocated channel, once CTAPHID_INIT succeeded.
    pub fn channel(&self) -> Option<Cid> {
        self.cid
    }

    /// Whether no transaction is in progress (a new one may be started).
    pub fn is_idle(&self) -> bool {
        self.transaction.is_none()
    }

    /// Starts CTAPHID_INIT on the broadcast channel with the caller's random nonce.
    /// Replies carrying another nonce (another application's) are ignored.
    pub fn init(&mut self, nonce: [u8; NONCE_LEN], now: Instant) -> Result<(), HidError> {
        self.start(Cid::BROADCAST, Command::Init, &nonce, Some(nonce), now)
    }

    /// Sends a request on the allocated channel. The response comes back as
    /// [`Event::Response`] with the same command (also for CTAPHID_INIT sent on the
    /// allocated channel to resynchronise it). CANCEL, KEEPALIVE and ERROR are not
    /// requests and are refused with [`HidError::InvalidCommand`].
    pub fn send(&mut self, cmd: Command, payload: &[u8], now: Instant) -> Result<(), HidError> {
        let cid = self.cid.ok_or(HidError::NoChannel)?;
        match cmd {
            Command::Cancel | Command::Keepalive | Command::Error => {
                Err(HidError::InvalidCommand { cmd: cmd.to_u8() })
            }
            _ => self.start(cid, cmd, payload, None, now),
        }
    }

    fn start(
        &mut self,
        cid: Cid,
        cmd: Command,
        payload: &[u8],
        nonce: Option<[u8; NONCE_LEN]>,
        now: Instant,
    ) -> Result<(), HidError> {
        if self.transaction.is_some() {
            return Err(HidError::TransactionInProgress);
        }
        let reports = fragment(cid, cmd, payload)?;
        self.transmit.extend(reports);
        self.transaction = Some(Transaction {
            cid,
            cmd,
            nonce,
            deadline: now + self.timeout,
            rx: None,
            cancel_requested: false,
            sent_any: false,
        });
        Ok(())
    }

    /// Cancels the request in progress.
    ///
    /// - Fully handed out by [`poll_transmit`](Self::poll_transmit): a CTAPHID_CANCEL
    ///   report is queued and the key's answer decides the outcome ([`Event::Cancelled`]
    ///   if it stopped, [`Event::Response`] if it had already finished).
    /// - Not handed out at all: the request is dropped and the transaction ends with
    ///   [`Event::Cancelled`] at once.
    /// - Partly handed out: the rest is dropped, a CANCEL report tells the key to
    ///   discard the half message, and the transaction ends with [`Event::Cancelled`].
    /// - CTAPHID_INIT cannot be cancelled on the wire; the host just stops waiting.
    ///
    /// Calling it again while a CANCEL is outstanding does nothing.
    pub fn cancel(&mut self, now: Instant) -> Result<(), HidError> {
        let Some(tx) = self.transaction.as_mut() else {
            return Err(HidError::NoTransaction);
        };
        if tx.cancel_requested {
            return Ok(());
        }
        let fully_sent = self.transmit.is_empty();
        if tx.cid == Cid::BROADCAST || !tx.sent_any {
            self.finish(Event::Cancelled);
            return Ok(());
        }
        let cancel = fragment(tx.cid, Command::Cancel, &[])?;
        if fully_sent {
            tx.cancel_requested = true;
            tx.deadline = now + self.timeout;
            self.transmit.extend(cancel);
        } else {
            self.finish(Event::Cancelled);
            self.transmit.extend(cancel);
        }
        Ok(())
    }

    /// The next report to write to the device.
    pub fn poll_transmit(&mut self) -> Option<[u8; REPORT_LEN]> {
        let report = self.transmit.pop_front()?;
        if let Some(tx) = self.transaction.as_mut() {
            tx.sent_any = true;
        }
        Some(report)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called, if a transaction
    /// is in progress.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.transaction.as_ref().map(|t| t.deadline)
    }

    /// Ends the transaction with [`Event::Failed`]`(`[`HidError::Timeout`]`)` if its
    /// deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(tx) = &self.transaction {
            if now >= tx.deadline {
                self.finish(Event::Failed(HidError::Timeout));
            }
        }
    }

    /// Ends the transaction; reports of it not yet handed out are dropped.
    fn finish(&mut self, event: Event) {
        self.transaction = None;
        self.transmit.clear();
        self.events.push_back(event);
    }

    fn fail(&mut self, err: HidError) -> Result<(), HidError> {
        self.finish(Event::Failed(err.clone()));
        Err(err)
    }

    /// Takes one 64-byte report read from the device.
    ///
    /// Reports for other channels, and reports while no transaction is in progress, are
    /// ignored (`Ok`) and never disturb a message being reassembled. `Err` means this
    /// report was rejected; if the rejection also aborted the transaction (sequence
    /// error, stray continuation, oversize BCNT, …) an [`Event::Failed`] with the same
    /// error is queued. A report of the wrong length ([`HidError::ReportLength`]) is
    /// rejected without touching the transaction.
    pub fn handle_report(&mut self, report: &[u8], now: Instant) -> Result<(), HidError> {
        let packet = Packet::parse(report)?;
        let Some(tx) = self.transaction.as_mut() else {
            return Ok(());
        };
        if packet.cid() != tx.cid {
            return Ok(());
        }
        match packet {
            Packet::Init {
                cmd, bcnt, data, ..
            } => self.handle_init(cmd, bcnt, data, now),
            Packet::Cont { seq, data, .. } => {
                let Some(rx) = tx.rx.as_mut() else {
                    return self.fail(HidError::UnexpectedContinuation { seq });
                };
                if let Err(e) = rx.push(seq, data) {
                    return self.fail(e);
                }
                tx.deadline = now + self.timeout;
                self.complete_if_done();
                Ok(())
            }
        }
    }

    fn handle_init(
        &mut self,
        cmd: Command,
        bcnt: u16,
        data: &[u8],
        now: Instant,
    ) -> Result<(), HidError> {
        let Some(tx) = self.transaction.as_mut() else {
            return Ok(());
        };
        let len = usize::from(bcnt);
        if let Some(nonce) = tx.nonce {
            // Waiting for INIT on the broadcast channel, shared with other
            // applications: only a well-formed INIT reply with our nonce is ours. Keys
            // answer a well-formed INIT even when busy, so an ERROR or KEEPALIVE on the
            // broadcast channel belongs to someone else.
            if cmd != Command::Init {
                return Ok(());
            }
            if !(INIT_RESPONSE_LEN..=INIT_DATA_LEN).contains(&len) {
                return Err(HidError::LengthMismatch {
                    field: "INIT response",
                    len,
                    reason: "must be 17 bytes in one report",
                });
            }
            if data.get(..NONCE_LEN) != Some(&nonce[..]) {
                return Ok(());
            }
            return match InitResponse::parse(data.get(..len).unwrap_or_default()) {
                Ok(resp) => {
                    self.cid = Some(resp.cid);
                    self.finish(Event::Init(resp));
                    Ok(())
                }
                Err(e) => self.fail(e),
            };
        }
        match cmd {
            Command::Keepalive => {
                if len == 0 {
                    return Err(HidError::LengthMismatch {
                        field: "KEEPALIVE",
                        len,
                        reason: "must carry a status byte",
                    });
                }
                let status = KeepaliveStatus::from_u8(data.first().copied().unwrap_or(0));
                tx.deadline = now + self.timeout;
                self.events.push_back(Event::Keepalive(status));
                Ok(())
            }
            Command::Error => {
                if len == 0 {
                    return self.fail(HidError::LengthMismatch {
                        field: "ERROR",
                        len,
                        reason: "must carry an error code",
                    });
                }
                let code = HidErrorCode::from_u8(data.first().copied().unwrap_or(0));
                self.finish(Event::Error(code));
                Ok(())
            }
            got if got == tx.cmd => {
                if tx.rx.is_some() {
                    return self.fail(HidError::UnexpectedInit { cmd: got.to_u8() });
                }
                match Reassembly::start(tx.cid, got, bcnt, data) {
                    Ok(rx) => {
                        tx.rx = Some(rx);
                        tx.deadline = now + self.timeout;
                        self.complete_if_done();
                        Ok(())
                    }
                    Err(e) => self.fail(e),
                }
            }
            got => {
                let err = if tx.rx.is_some() {
                    HidError::UnexpectedInit { cmd: got.to_u8() }
                } else {
                    HidError::UnexpectedCommand {
                        expected: tx.cmd.to_u8(),
                        got: got.to_u8(),
                    }
                };
                self.fail(err)
            }
        }
    }

    fn complete_if_done(&mut self) {
        let done = self
            .transaction
            .as_ref()
            .and_then(|t| t.rx.as_ref())
            .is_some_and(Reassembly::is_complete);
        if !done {
            return;
        }
        let Some(tx) = self.transaction.take() else {
            return;
        };
        self.transmit.clear();
        let Some(rx) = tx.rx else {
            return;
        };
        let cmd = rx.cmd;
        let payload = rx.into_payload();
        let event = if tx.cancel_requested
            && cmd == Command::Cbor
            && payload.as_slice() == [STATUS_KEEPALIVE_CANCEL]
        {
            Event::Cancelled
        } else {
            Event::Response { cmd, payload }
        };
        self.events.push_back(event);
    }

    /// Bytes reassembled so far and bytes declared for the response in progress (for
    /// progress display and for the fuzzing invariants).
    pub fn progress(&self) -> Option<(usize, usize)> {
        let rx = self.transaction.as_ref()?.rx.as_ref()?;
        Some((rx.received(), rx.expected()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctaphid::fragment;

    const T: Duration = Duration::from_millis(500);
    const CID: Cid = Cid(0x0102_0304);

    fn client(now: Instant) -> HidClient {
        let mut c = HidClient::with_channel(CID, T).unwrap();
        c.send(Command::Cbor, &[0x04], now).unwrap();
        assert!(c.poll_transmit().is_some());
        assert!(c.poll_transmit().is_none());
        c
    }

    #[test]
    fn init_ignores_foreign_nonce_and_sets_channel() {
        let now = Instant::now();
        let mut c = HidClient::new(T);
        assert_eq!(c.send(Command::Cbor, &[], now), Err(HidError::NoChannel));
        let nonce = [9u8; 8];
        c.init(nonce, now).unwrap();
        let req = c.poll_transmit().unwrap();
        assert_eq!(&req[..7], &[0xff, 0xff, 0xff, 0xff, 0x86, 0, 8]);
        assert_eq!(&req[7..15], &nonce);
        let mut other = InitResponse {
            nonce: [1; 8],
            cid: Cid(7),
            protocol_version: 2,
            version_major: 1,
            version_minor: 2,
            version_build: 3,
            capabilities: super::super::Capabilities::CBOR,
        };
        let r = fragment(Cid::BROADCAST, Command::Init, &other.to_bytes()).unwrap();
        c.handle_report(&r[0], now).unwrap();
        assert_eq!(c.poll_event(), None);
        other.nonce = nonce;
        let r = fragment(Cid::BROADCAST, Command::Init, &other.to_bytes()).unwrap();
        c.handle_report(&r[0], now).unwrap();
        assert_eq!(c.poll_event(), Some(Event::Init(other)));
        assert_eq!(c.channel(), Some(Cid(7)));
        assert!(c.is_idle());
    }

    #[test]
    fn init_ignores_broadcast_noise() {
        let now = Instant::now();
        let mut c = HidClient::new(T);
        c.init([3; 8], now).unwrap();
        for noise in [
            fragment(Cid::BROADCAST, Command::Error, &[0x06]).unwrap(),
            fragment(Cid::BROADCAST, Command::Keepalive, &[0x01]).unwrap(),
            fragment(Cid(9), Command::Init, &[3; 17]).unwrap(),
        ] {
            c.handle_report(&noise[0], now).unwrap();
        }
        let short = fragment(Cid::BROADCAST, Command::Init, &[3; 16]).unwrap();
        assert!(matches!(
            c.handle_report(&short[0], now),
            Err(HidError::LengthMismatch { .. })
        ));
        assert_eq!(c.poll_event(), None);
        assert!(!c.is_idle());
        // Our nonce but the broadcast channel as the allocated one: malformed.
        let mut bad = [3u8; 17];
        bad[8..12].copy_from_slice(&[0xff; 4]);
        let bad = fragment(Cid::BROADCAST, Command::Init, &bad).unwrap();
        assert!(c.handle_report(&bad[0], now).is_err());
        assert!(matches!(
            c.poll_event(),
            Some(Event::Failed(HidError::InvalidInitResponse { .. }))
        ));
        assert_eq!(c.channel(), None);
    }

    #[test]
    fn timeout_moves_with_keepalive() {
        let now = Instant::now();
        let mut c = client(now);
        assert_eq!(c.poll_timeout(), Some(now + T));
        let ka = fragment(CID, Command::Keepalive, &[2]).unwrap();
        let later = now + Duration::from_millis(400);
        c.handle_report(&ka[0], later).unwrap();
        assert_eq!(
            c.poll_event(),
            Some(Event::Keepalive(KeepaliveStatus::UpNeeded))
        );
        c.handle_timeout(now + T);
        assert_eq!(c.poll_event(), None);
        c.handle_timeout(later + T);
        assert_eq!(c.poll_event(), Some(Event::Failed(HidError::Timeout)));
        assert!(c.is_idle());
        assert_eq!(c.poll_timeout(), None);
    }

    #[test]
    fn second_request_while_busy_is_refused() {
        let now = Instant::now();
        let mut c = client(now);
        assert_eq!(
            c.send(Command::Cbor, &[1], now),
            Err(HidError::TransactionInProgress)
        );
    }

    #[test]
    fn cancel_before_transmit_drops_request() {
        let now = Instant::now();
        let mut c = HidClient::with_channel(CID, T).unwrap();
        assert_eq!(c.cancel(now), Err(HidError::NoTransaction));
        c.send(Command::Cbor, &[0; 200], now).unwrap();
        c.cancel(now).unwrap();
        assert_eq!(c.poll_transmit(), None);
        assert_eq!(c.poll_event(), Some(Event::Cancelled));
        assert!(c.is_idle());
    }

    #[test]
    fn cancel_part_way_drops_rest_and_tells_the_key() {
        let now = Instant::now();
        let mut c = HidClient::with_channel(CID, T).unwrap();
        c.send(Command::Cbor, &[0; 200], now).unwrap();
        assert!(c.poll_transmit().is_some());
        c.cancel(now).unwrap();
        let r = c.poll_transmit().unwrap();
        assert_eq!(&r[..7], &[1, 2, 3, 4, 0x91, 0, 0]);
        assert_eq!(c.poll_transmit(), None);
        assert_eq!(c.poll_event(), Some(Event::Cancelled));
        assert!(c.is_idle());
    }

    #[test]
    fn cancel_after_transmit_sends_cancel_and_maps_0x2d() {
        let now = Instant::now();
        let mut c = client(now);
        c.cancel(now).unwrap();
        let r = c.poll_transmit().unwrap();
        assert_eq!(&r[..7], &[1, 2, 3, 4, 0x91, 0, 0]);
        c.cancel(now).unwrap();
        assert_eq!(c.poll_transmit(), None, "only one CANCEL report");
        let resp = fragment(CID, Command::Cbor, &[0x2d]).unwrap();
        c.handle_report(&resp[0], now).unwrap();
        assert_eq!(c.poll_event(), Some(Event::Cancelled));
    }

    #[test]
    fn device_error_ends_transaction() {
        let now = Instant::now();
        let mut c = client(now);
        let e = fragment(CID, Command::Error, &[0x06]).unwrap();
        c.handle_report(&e[0], now).unwrap();
        assert_eq!(
            c.poll_event(),
            Some(Event::Error(HidErrorCode::ChannelBusy))
        );
        assert!(c.is_idle());
    }
}
