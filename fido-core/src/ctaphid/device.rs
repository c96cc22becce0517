//! The authenticator side of CTAPHID, for the software authenticator: channel
//! allocation, request reassembly, framing errors, busy handling, cancel and response
//! fragmentation.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{
    fragment, Capabilities, Cid, Command, HidError, HidErrorCode, InitResponse, KeepaliveStatus,
    Packet, Reassembly, NONCE_LEN, PROTOCOL_VERSION, REPORT_LEN,
};

/// How the software key describes itself and how patient it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Device version (major, minor, build) sent in INIT responses.
    pub version: (u8, u8, u8),
    /// Capability flags sent in INIT responses.
    pub capabilities: Capabilities,
    /// How long a half-received request may wait for its next report before the key
    /// answers ERR_MSG_TIMEOUT.
    pub message_timeout: Duration,
    /// How many channels are remembered; the oldest idle one is forgotten beyond that.
    pub max_channels: usize,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            version: (0, 1, 0),
            capabilities: Capabilities::WINK | Capabilities::CBOR | Capabilities::NMSG,
            message_timeout: Duration::from_millis(500),
            max_channels: 16,
        }
    }
}

/// What the device state machine hands to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceEvent {
    /// A complete request (CBOR, MSG, WINK, LOCK or a vendor command). The channel is
    /// busy until the application calls [`HidDevice::respond`] or
    /// [`HidDevice::respond_error`]; meanwhile it may send keepalives.
    Request {
        /// The requesting channel.
        cid: Cid,
        /// The command.
        cmd: Command,
        /// The request payload.
        payload: Vec<u8>,
    },
    /// The host cancelled the request in progress on `cid`. After CTAPHID_CANCEL the
    /// application should stop and answer CTAP2_ERR_KEEPALIVE_CANCEL (`0x2D`) with
    /// [`HidDevice::respond`]. After a CTAPHID_INIT on that channel (resynchronisation)
    /// the request is already forgotten: the application just stops, and `respond`
    /// would fail. A CANCEL for a half-received request silently drops it.
    Cancel {
        /// The channel.
        cid: Cid,
    },
}

#[derive(Clone, Debug)]
struct Incoming {
    rx: Reassembly,
    deadline: Instant,
}

/// The authenticator-side CTAPHID state machine (no IO, no clock).
///
/// One request is handled at a time across all channels: while one channel has a
/// request being received or processed, initialization reports from other channels
/// are answered with ERR_CHANNEL_BUSY. INIT (channel allocation), PING and framing
/// errors are answered here; everything else goes to the application as
/// [`DeviceEvent::Request`].
#[derive(Debug)]
pub struct HidDevice {
    config: DeviceConfig,
    next_cid: u32,
    channels: VecDeque<Cid>,
    incoming: Option<Incoming>,
    busy: Option<Cid>,
    transmit: VecDeque<[u8; REPORT_LEN]>,
    events: VecDeque<DeviceEvent>,
}

impl HidDevice {
    /// A device with no channels allocated.
    pub fn new(config: DeviceConfig) -> Self {
        HidDevice {
            config,
            next_cid: 1,
            channels: VecDeque::new(),
            incoming: None,
            busy: None,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The next report to send to the host.
    pub fn poll_transmit(&mut self) -> Option<[u8; REPORT_LEN]> {
        self.transmit.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called (a request is half
    /// received).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.incoming.as_ref().map(|i| i.deadline)
    }

    /// Answers ERR_MSG_TIMEOUT and drops a half-received request whose deadline passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(inc) = &self.incoming {
            if now >= inc.deadline {
                let cid = inc.rx.cid;
                self.incoming = None;
                self.send_error(cid, HidErrorCode::MsgTimeout);
            }
        }
    }

    /// The channel whose request the application is processing, if any.
    pub fn busy_channel(&self) -> Option<Cid> {
        self.busy
    }

    /// Sends the response to the request in progress on `cid` and frees the device.
    pub fn respond(&mut self, cid: Cid, cmd: Command, payload: &[u8]) -> Result<(), HidError> {
        if self.busy != Some(cid) {
            return Err(HidError::InvalidChannel { cid: cid.0 });
        }
        let reports = fragment(cid, cmd, payload)?;
        self.transmit.extend(reports);
        self.busy = None;
        Ok(())
    }

    /// Answers the request in progress on `cid` with CTAPHID_ERROR and frees the device.
    pub fn respond_error(&mut self, cid: Cid, code: HidErrorCode) -> Result<(), HidError> {
        if self.busy != Some(cid) {
            return Err(HidError::InvalidChannel { cid: cid.0 });
        }
        self.busy = None;
        self.send_error(cid, code);
        Ok(())
    }

    /// Sends a KEEPALIVE for the request in progress on `cid` (about every 100 ms while
    /// working; [`KeepaliveStatus::UpNeeded`] while waiting for a touch).
    pub fn send_keepalive(&mut self, cid: Cid, status: KeepaliveStatus) -> Result<(), HidError> {
        if self.busy != Some(cid) {
            return Err(HidError::InvalidChannel { cid: cid.0 });
        }
        self.transmit
            .extend(fragment(cid, Command::Keepalive, &[status.to_u8()])?);
        Ok(())
    }

    fn send_error(&mut self, cid: Cid, code: HidErrorCode) {
        // One byte with a fixed 7-bit command never fails to fragment.
        if let Ok(r) = fragment(cid, Command::Error, &[code.to_u8()]) {
            self.transmit.extend(r);
        }
    }

    fn is_allocated(&self, cid: Cid) -> bool {
        self.channels.contains(&cid)
    }

    fn allocate(&mut self) -> Cid {
        loop {
            let cid = Cid(self.next_cid);
            self.next_cid = self.next_cid.wrapping_add(1);
            if cid.is_allocatable() && !self.is_allocated(cid) {
                break self.remember(cid);
            }
        }
    }

    fn remember(&mut self, cid: Cid) -> Cid {
        while self.channels.len() >= self.config.max_channels.max(1) {
            // Forget the oldest channel that is not in use.
            let in_use = |c: &Cid| {
                Some(*c) == self.busy || self.incoming.as_ref().map(|i| i.rx.cid) == Some(*c)
            };
            match self.channels.iter().position(|c| !in_use(c)) {
                Some(i) => {
                    self.channels.remove(i);
                }
                None => break,
            }
        }
        self.channels.push_back(cid);
        cid
    }

    fn init_response(&self, nonce: [u8; NONCE_LEN], cid: Cid) -> [u8; 17] {
        let (major, minor, build) = self.config.version;
        InitResponse {
            nonce,
            cid,
            protocol_version: PROTOCOL_VERSION,
            version_major: major,
            version_minor: minor,
            version_build: build,
            capabilities: self.config.capabilities,
        }
        .to_bytes()
    }

    /// Takes one 64-byte report from the host.
    ///
    /// Framing problems are answered on the wire with CTAPHID_ERROR as the protocol
    /// requires, and also returned as `Err` for logging. Reports of the wrong length
    /// ([`HidError::ReportLength`]) and stray continuations are dropped without an
    /// answer.
    pub fn handle_report(&mut self, report: &[u8], now: Instant) -> Result<(), HidError> {
        match Packet::parse(report)? {
            Packet::Init {
                cid,
                cmd,
                bcnt,
                data,
            } => self.handle_init(cid, cmd, bcnt, data, now),
            Packet::Cont { cid, seq, data } => self.handle_cont(cid, seq, data, now),
        }
    }

    fn reject(&mut self, cid: Cid, code: HidErrorCode, err: HidError) -> Result<(), HidError> {
        self.send_error(cid, code);
        Err(err)
    }

    fn handle_init(
        &mut self,
        cid: Cid,
        cmd: Command,
        bcnt: u16,
        data: &[u8],
        now: Instant,
    ) -> Result<(), HidError> {
        let len = usize::from(bcnt);
        if cmd == Command::Init {
            if len != NONCE_LEN {
                return self.reject(
                    cid,
                    HidErrorCode::InvalidLen,
                    HidError::LengthMismatch {
                        field: "INIT request",
                        len,
                        reason: "must be the 8-byte nonce",
                    },
                );
            }
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(data.get(..NONCE_LEN).unwrap_or(&[0; NONCE_LEN]));
            let reply_cid = if cid == Cid::BROADCAST {
                self.allocate()
            } else if self.is_allocated(cid) {
                // Resynchronise: abandon whatever this channel was doing.
                if self.incoming.as_ref().is_some_and(|i| i.rx.cid == cid) {
                    self.incoming = None;
                }
                if self.busy == Some(cid) {
                    self.busy = None;
                    self.events.push_back(DeviceEvent::Cancel { cid });
                }
                cid
            } else {
                return self.reject(
                    cid,
                    HidErrorCode::InvalidChannel,
                    HidError::InvalidChannel { cid: cid.0 },
                );
            };
            let body = self.init_response(nonce, reply_cid);
            self.transmit.extend(fragment(cid, Command::Init, &body)?);
            return Ok(());
        }
        if !self.is_allocated(cid) {
            return self.reject(
                cid,
                HidErrorCode::InvalidChannel,
                HidError::InvalidChannel { cid: cid.0 },
            );
        }
        if cmd == Command::Cancel {
            if self.incoming.as_ref().is_some_and(|i| i.rx.cid == cid) {
                self.incoming = None;
            }
            if self.busy == Some(cid) {
                self.events.push_back(DeviceEvent::Cancel { cid });
            }
            // CANCEL is never answered itself.
            return Ok(());
        }
        let other_active = self.busy.is_some_and(|b| b != cid)
            || self.incoming.as_ref().is_some_and(|i| i.rx.cid != cid);
        if other_active || self.busy == Some(cid) {
            return self.reject(cid, HidErrorCode::ChannelBusy, HidError::ChannelBusy);
        }
        if self.incoming.is_some() {
            // Same channel (others were refused above): a new initialization report
            // in the middle of a message.
            self.incoming = None;
            return self.reject(
                cid,
                HidErrorCode::InvalidSeq,
                HidError::UnexpectedInit { cmd: cmd.to_u8() },
            );
        }
        match cmd {
            Command::Keepalive | Command::Error => {
                return self.reject(
                    cid,
                    HidErrorCode::InvalidCmd,
                    HidError::InvalidCommand { cmd: cmd.to_u8() },
                );
            }
            Command::Other(b) if b < 0x40 => {
                return self.reject(
                    cid,
                    HidErrorCode::InvalidCmd,
                    HidError::InvalidCommand { cmd: b },
                );
            }
            _ => {}
        }
        let rx = match Reassembly::start(cid, cmd, bcnt, data) {
            Ok(rx) => rx,
            Err(e) => return self.reject(cid, HidErrorCode::InvalidLen, e),
        };
        self.incoming = Some(Incoming {
            rx,
            deadline: now + self.config.message_timeout,
        });
        self.dispatch_if_complete();
        Ok(())
    }

    fn handle_cont(
        &mut self,
        cid: Cid,
        seq: u8,
        data: &[u8],
        now: Instant,
    ) -> Result<(), HidError> {
        if !self.is_allocated(cid) {
            return self.reject(
                cid,
                HidErrorCode::InvalidChannel,
                HidError::InvalidChannel { cid: cid.0 },
            );
        }
        let timeout = self.config.message_timeout;
        let Some(inc) = self.incoming.as_mut().filter(|i| i.rx.cid == cid) else {
            // Spurious continuations are ignored, as the protocol says.
            return Err(HidError::UnexpectedContinuation { seq });
        };
        if let Err(e) = inc.rx.push(seq, data) {
            self.incoming = None;
            return self.reject(cid, HidErrorCode::InvalidSeq, e);
        }
        inc.deadline = now + timeout;
        self.dispatch_if_complete();
        Ok(())
    }

    fn dispatch_if_complete(&mut self) {
        if !self.incoming.as_ref().is_some_and(|i| i.rx.is_complete()) {
            return;
        }
        let Some(inc) = self.incoming.take() else {
            return;
        };
        let cid = inc.rx.cid;
        let cmd = inc.rx.cmd;
        let payload = inc.rx.into_payload();
        if cmd == Command::Ping {
            if let Ok(r) = fragment(cid, Command::Ping, &payload) {
                self.transmit.extend(r);
            }
            return;
        }
        self.busy = Some(cid);
        self.events
            .push_back(DeviceEvent::Request { cid, cmd, payload });
    }

    /// Bytes received so far and declared for the request being reassembled.
    pub fn progress(&self) -> Option<(usize, usize)> {
        self.incoming
            .as_ref()
            .map(|i| (i.rx.received(), i.rx.expected()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocate(dev: &mut HidDevice, now: Instant) -> Cid {
        let req = fragment(Cid::BROADCAST, Command::Init, &[5; 8]).unwrap();
        dev.handle_report(&req[0], now).unwrap();
        let r = dev.poll_transmit().unwrap();
        assert_eq!(&r[..7], &[0xff, 0xff, 0xff, 0xff, 0x86, 0, 17]);
        assert_eq!(&r[7..15], &[5; 8]);
        let resp = InitResponse::parse(&r[7..24]).unwrap();
        resp.cid
    }

    fn error_of(report: [u8; 64]) -> (Cid, HidErrorCode) {
        assert_eq!(report[4], 0xbf, "an ERROR report");
        assert_eq!(&report[5..7], &[0, 1]);
        (
            Cid::from_bytes([report[0], report[1], report[2], report[3]]),
            HidErrorCode::from_u8(report[7]),
        )
    }

    #[test]
    fn allocates_distinct_channels() {
        let now = Instant::now();
        let mut dev = HidDevice::new(DeviceConfig::default());
        let a = allocate(&mut dev, now);
        let b = allocate(&mut dev, now);
        assert_ne!(a, b);
        assert!(a.is_allocatable() && b.is_allocatable());
    }

    #[test]
    fn forgets_oldest_idle_channel_beyond_limit() {
        let now = Instant::now();
        let mut dev = HidDevice::new(DeviceConfig {
            max_channels: 2,
            ..DeviceConfig::default()
        });
        let a = allocate(&mut dev, now);
        let b = allocate(&mut dev, now);
        let c = allocate(&mut dev, now);
        let ping = |cid: Cid| fragment(cid, Command::Ping, &[1]).unwrap()[0];
        assert_eq!(
            dev.handle_report(&ping(a), now),
            Err(HidError::InvalidChannel { cid: a.0 })
        );
        let _ = dev.poll_transmit();
        for cid in [b, c] {
            dev.handle_report(&ping(cid), now).unwrap();
            assert_eq!(dev.poll_transmit(), Some(ping(cid)));
        }
    }

    #[test]
    fn init_on_own_channel_resynchronises() {
        let now = Instant::now();
        let mut dev = HidDevice::new(DeviceConfig::default());
        let a = allocate(&mut dev, now);
        let req = fragment(a, Command::Cbor, &[1; 10]).unwrap();
        dev.handle_report(&req[0], now).unwrap();
        assert!(matches!(
            dev.poll_event(),
            Some(DeviceEvent::Request { .. })
        ));
        assert_eq!(dev.busy_channel(), Some(a));
        let init = fragment(a, Command::Init, &[8; 8]).unwrap();
        dev.handle_report(&init[0], now).unwrap();
        assert_eq!(dev.poll_event(), Some(DeviceEvent::Cancel { cid: a }));
        assert_eq!(dev.busy_channel(), None);
        let r = dev.poll_transmit().unwrap();
        assert_eq!(
            &r[..7],
            &[
                a.to_bytes()[0],
                a.to_bytes()[1],
                a.to_bytes()[2],
                a.to_bytes()[3],
                0x86,
                0,
                17
            ]
        );
        assert_eq!(InitResponse::parse(&r[7..24]).unwrap().cid, a);
        assert_eq!(
            dev.respond(a, Command::Cbor, &[0]),
            Err(HidError::InvalidChannel { cid: a.0 })
        );
    }

    #[test]
    fn unknown_channel_and_bad_init_len() {
        let now = Instant::now();
        let mut dev = HidDevice::new(DeviceConfig::default());
        let r = fragment(Cid(0x4242), Command::Cbor, &[4]).unwrap();
        assert_eq!(
            dev.handle_report(&r[0], now),
            Err(HidError::InvalidChannel { cid: 0x4242 })
        );
        assert_eq!(
            error_of(dev.poll_transmit().unwrap()),
            (Cid(0x4242), HidErrorCode::InvalidChannel)
        );
        let r = fragment(Cid::BROADCAST, Command::Init, &[1; 7]).unwrap();
        assert!(dev.handle_report(&r[0], now).is_err());
        assert_eq!(
            error_of(dev.poll_transmit().unwrap()),
            (Cid::BROADCAST, HidErrorCode::InvalidLen)
        );
    }

    #[test]
    fn busy_other_channel_and_ping_and_timeout() {
        let now = Instant::now();
        let mut dev = HidDevice::new(DeviceConfig::default());
        let a = allocate(&mut dev, now);
        let b = allocate(&mut dev, now);
        // A starts a two-report request.
        let req = fragment(a, Command::Cbor, &[1; 100]).unwrap();
        dev.handle_report(&req[0], now).unwrap();
        let ping = fragment(b, Command::Ping, &[7; 3]).unwrap();
        assert_eq!(dev.handle_report(&ping[0], now), Err(HidError::ChannelBusy));
        assert_eq!(
            error_of(dev.poll_transmit().unwrap()),
            (b, HidErrorCode::ChannelBusy)
        );
        assert_eq!(dev.poll_timeout(), Some(now + Duration::from_millis(500)));
        dev.handle_timeout(now + Duration::from_millis(500));
        assert_eq!(
            error_of(dev.poll_transmit().unwrap()),
            (a, HidErrorCode::MsgTimeout)
        );
        // Now B may ping, answered by the state machine itself.
        dev.handle_report(&ping[0], now).unwrap();
        let echo = dev.poll_transmit().unwrap();
        assert_eq!(echo, ping[0]);
        assert_eq!(dev.poll_event(), None);
    }

    #[test]
    fn bad_sequence_and_cancel() {
        let now = Instant::now();
        let mut dev = HidDevice::new(DeviceConfig::default());
        let a = allocate(&mut dev, now);
        let req = fragment(a, Command::Cbor, &[1; 200]).unwrap();
        dev.handle_report(&req[0], now).unwrap();
        assert!(dev.handle_report(&req[2], now).is_err());
        assert_eq!(
            error_of(dev.poll_transmit().unwrap()),
            (a, HidErrorCode::InvalidSeq)
        );
        // Stray continuation afterwards: ignored, no answer.
        assert_eq!(
            dev.handle_report(&req[1], now),
            Err(HidError::UnexpectedContinuation { seq: 0 })
        );
        assert_eq!(dev.poll_transmit(), None);
        for r in &req {
            dev.handle_report(r, now).unwrap();
        }
        assert!(matches!(
            dev.poll_event(),
            Some(DeviceEvent::Request { payload, .. }) if payload == vec![1; 200]
        ));
        let cancel = fragment(a, Command::Cancel, &[]).unwrap();
        dev.handle_report(&cancel[0], now).unwrap();
        assert_eq!(dev.poll_event(), Some(DeviceEvent::Cancel { cid: a }));
        assert_eq!(dev.poll_transmit(), None);
        dev.send_keepalive(a, KeepaliveStatus::Processing).unwrap();
        dev.respond(a, Command::Cbor, &[0x2d]).unwrap();
        assert_eq!(dev.poll_transmit().unwrap()[4], 0xbb);
        assert_eq!(&dev.poll_transmit().unwrap()[4..8], &[0x90, 0, 1, 0x2d]);
        assert_eq!(
            dev.respond(a, Command::Cbor, &[0]),
            Err(HidError::InvalidChannel { cid: a.0 })
        );
    }
}
