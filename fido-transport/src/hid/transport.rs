//! The blocking CTAPHID driver over any [`ReportPipe`].

use std::time::{Duration, Instant};

use fido_core::ctaphid::{
    Capabilities, Cid, Command, Event, HidClient, HidError, HidErrorCode, InitResponse,
    KeepaliveStatus, DEFAULT_INACTIVITY_TIMEOUT, NONCE_LEN,
};
use rand_core::{OsRng, RngCore};

use super::ReportPipe;
use crate::{CancelToken, Error, Progress, Transport, TransportKind};

/// Timing and retry policy of a [`CtapHidTransport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HidConfig {
    /// How long the key may stay silent (no report, not even a keepalive) during a
    /// transaction before it fails with [`Error::Timeout`].
    pub inactivity_timeout: Duration,
    /// The longest a whole transaction may take, keepalives included (for example
    /// waiting for a touch). When it passes the request is cancelled on the wire and
    /// the call fails with [`Error::Timeout`].
    pub transaction_timeout: Duration,
    /// Reads are made in slices of at most this long, so that a cancel request from
    /// another thread is noticed promptly.
    pub read_slice: Duration,
    /// How many times a request answered with ERR_CHANNEL_BUSY is sent again.
    pub busy_retries: u32,
    /// The first wait before such a retry; it doubles on every retry (up to 1 s).
    pub busy_backoff: Duration,
    /// When resynchronising after an error, reports are read and discarded until the
    /// device has been quiet for this long.
    pub drain_quiet: Duration,
}

impl Default for HidConfig {
    fn default() -> Self {
        HidConfig {
            inactivity_timeout: DEFAULT_INACTIVITY_TIMEOUT,
            transaction_timeout: Duration::from_secs(120),
            read_slice: Duration::from_millis(100),
            busy_retries: 5,
            busy_backoff: Duration::from_millis(50),
            drain_quiet: Duration::from_millis(30),
        }
    }
}

/// Largest number of stale reports discarded by one resynchronisation (a maximal
/// message is 129 reports; a few keepalives may follow).
const MAX_DRAIN_REPORTS: usize = 512;
/// Longest a single backoff sleep may be.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

fn hid(e: HidError) -> Error {
    Error::Core(fido_core::Error::Hid(e))
}

/// A CTAPHID connection to one authenticator over a [`ReportPipe`] (blocking).
///
/// Construction allocates a channel with CTAPHID_INIT and a random nonce. Every call
/// then sends one request and waits for its answer; see [`HidConfig`] for timeouts,
/// busy retries and cancellation. After a framing error, a timeout or a lost report
/// the transport drains stale reports and allocates a fresh channel before the next
/// request, so one bad exchange does not poison the next.
#[derive(Debug)]
pub struct CtapHidTransport<P: ReportPipe> {
    pipe: P,
    config: HidConfig,
    client: HidClient,
    info: InitResponse,
    cancel: CancelToken,
    needs_resync: bool,
}

impl<P: ReportPipe> CtapHidTransport<P> {
    /// Connects with the default [`HidConfig`]: allocates a channel on the device.
    pub fn new(pipe: P) -> Result<Self, Error> {
        Self::with_config(pipe, HidConfig::default())
    }

    /// Connects with the given policy: allocates a channel on the device.
    pub fn with_config(pipe: P, config: HidConfig) -> Result<Self, Error> {
        let placeholder = InitResponse {
            nonce: [0; NONCE_LEN],
            cid: Cid::BROADCAST,
            protocol_version: 0,
            version_major: 0,
            version_minor: 0,
            version_build: 0,
            capabilities: Capabilities::default(),
        };
        let mut t = CtapHidTransport {
            pipe,
            config,
            client: HidClient::new(config.inactivity_timeout),
            info: placeholder,
            cancel: CancelToken::new(),
            needs_resync: false,
        };
        let deadline = Instant::now() + config.transaction_timeout;
        t.allocate_channel(deadline)?;
        Ok(t)
    }

    /// The CTAPHID_INIT answer of the current channel (versions, capabilities).
    pub fn init_response(&self) -> &InitResponse {
        &self.info
    }

    /// The key's capability flags (WINK, CBOR, NMSG).
    pub fn capabilities(&self) -> Capabilities {
        self.info.capabilities
    }

    /// The channel currently allocated to this transport.
    pub fn channel(&self) -> Cid {
        self.info.cid
    }

    /// The policy in use.
    pub fn config(&self) -> &HidConfig {
        &self.config
    }

    /// The underlying pipe.
    pub fn pipe_mut(&mut self) -> &mut P {
        &mut self.pipe
    }

    /// Gives the pipe back.
    pub fn into_pipe(self) -> P {
        self.pipe
    }

    /// Sends CTAPHID_PING with `data` and checks the echo; returns the round-trip time.
    pub fn ping(&mut self, data: &[u8]) -> Result<Duration, Error> {
        let start = Instant::now();
        let echo = self.request(Command::Ping, data, &mut |_| {})?;
        if echo != data {
            self.needs_resync = true;
            return Err(Error::Hid {
                device: self.pipe.describe(),
                message: format!(
                    "CTAPHID_PING echo differs from the {} bytes sent ({} bytes came back)",
                    data.len(),
                    echo.len()
                ),
            });
        }
        Ok(start.elapsed())
    }

    /// Sends CTAPHID_WINK (the key blinks), if its capabilities include WINK.
    pub fn wink(&mut self) -> Result<(), Error> {
        if !self.info.capabilities.contains(Capabilities::WINK) {
            return Err(Error::Unsupported(format!(
                "{} does not implement CTAPHID_WINK",
                self.pipe.describe()
            )));
        }
        self.request(Command::Wink, &[], &mut |_| {})?;
        Ok(())
    }

    /// Drains stale reports and allocates a fresh channel now.
    pub fn resync(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + self.config.transaction_timeout;
        self.needs_resync = true;
        self.resync_if_needed(deadline)
    }

    /// Sends one CTAPHID request and returns the response payload.
    ///
    /// Keepalives are passed to `progress`; ERR_CHANNEL_BUSY is retried with backoff;
    /// ERR_INVALID_CHANNEL makes the transport allocate a new channel and retry once;
    /// other CTAPHID errors come back as `Error::Core(fido_core::Error::Hid(..))`.
    ///
    /// The [`CancelToken`] is cleared when the request starts; cancelling from another
    /// thread while it runs sends CTAPHID_CANCEL and ends the call with
    /// [`Error::Cancelled`] (unless the key had already answered).
    pub fn request(
        &mut self,
        cmd: Command,
        payload: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        self.cancel.reset();
        let deadline = Instant::now() + self.config.transaction_timeout;
        let mut busy_attempts = 0u32;
        let mut channel_retried = false;
        loop {
            self.resync_if_needed(deadline)?;
            self.client
                .send(cmd, payload, Instant::now())
                .map_err(hid)?;
            match self.exchange(progress, deadline)? {
                Event::Response { payload, .. } => return Ok(payload),
                Event::Error(HidErrorCode::ChannelBusy)
                    if busy_attempts < self.config.busy_retries =>
                {
                    let wait = self
                        .config
                        .busy_backoff
                        .saturating_mul(1u32 << busy_attempts.min(16))
                        .min(MAX_BACKOFF);
                    busy_attempts += 1;
                    self.sleep_cancellable(wait, deadline)?;
                }
                Event::Error(HidErrorCode::InvalidChannel) if !channel_retried => {
                    channel_retried = true;
                    self.needs_resync = true;
                }
                Event::Error(code) => return Err(hid(HidError::from(code))),
                other => {
                    self.needs_resync = true;
                    return Err(Error::Hid {
                        device: self.pipe.describe(),
                        message: format!("unexpected CTAPHID outcome {other:?}"),
                    });
                }
            }
        }
    }

    fn sleep_cancellable(&mut self, wait: Duration, deadline: Instant) -> Result<(), Error> {
        let until = Instant::now() + wait;
        loop {
            if self.cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout(self.config.transaction_timeout));
            }
            if now >= until {
                return Ok(());
            }
            std::thread::sleep((until - now).min(self.config.read_slice));
        }
    }

    fn resync_if_needed(&mut self, deadline: Instant) -> Result<(), Error> {
        if !self.needs_resync {
            return Ok(());
        }
        // Discard whatever the key still sends for an abandoned transaction.
        for _ in 0..MAX_DRAIN_REPORTS {
            if self.pipe.read_report(self.config.drain_quiet)?.is_none() {
                break;
            }
        }
        // A key still finishing the abandoned request answers INIT only afterwards:
        // give it a second inactivity period before giving up.
        match self.allocate_channel(deadline) {
            Err(Error::Timeout(_)) => self.allocate_channel(deadline)?,
            other => other?,
        }
        self.needs_resync = false;
        Ok(())
    }

    fn allocate_channel(&mut self, deadline: Instant) -> Result<(), Error> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.try_fill_bytes(&mut nonce).map_err(|e| Error::Io {
            context: "generating the CTAPHID_INIT nonce".into(),
            message: e.to_string(),
        })?;
        self.client = HidClient::new(self.config.inactivity_timeout);
        self.client.init(nonce, Instant::now()).map_err(hid)?;
        match self.exchange(&mut |_| {}, deadline)? {
            Event::Init(resp) => {
                self.info = resp;
                Ok(())
            }
            other => {
                self.needs_resync = true;
                Err(Error::Hid {
                    device: self.pipe.describe(),
                    message: format!("CTAPHID_INIT was answered with {other:?}"),
                })
            }
        }
    }

    /// Forgets the transaction in progress (the next request resynchronises).
    fn abandon(&mut self) {
        self.needs_resync = true;
        self.client = HidClient::new(self.config.inactivity_timeout);
    }

    /// Drives the client until the transaction in progress ends. Returns the final
    /// event (`Init`, `Response` or `Error`); cancellation, timeouts, protocol
    /// violations and IO failures come back as `Err`.
    fn exchange(
        &mut self,
        progress: &mut dyn FnMut(Progress),
        deadline: Instant,
    ) -> Result<Event, Error> {
        let mut cancelling = false;
        let mut timed_out = false;
        loop {
            while let Some(report) = self.client.poll_transmit() {
                if let Err(e) = self.pipe.write_report(&report) {
                    self.abandon();
                    return Err(e);
                }
            }
            while let Some(event) = self.client.poll_event() {
                match event {
                    Event::Keepalive(KeepaliveStatus::Processing) => progress(Progress::Processing),
                    Event::Keepalive(KeepaliveStatus::UpNeeded) => {
                        progress(Progress::UserPresenceNeeded)
                    }
                    Event::Keepalive(KeepaliveStatus::Other(_)) => {}
                    Event::Cancelled => {
                        return Err(if timed_out {
                            Error::Timeout(self.config.transaction_timeout)
                        } else {
                            Error::Cancelled
                        });
                    }
                    Event::Failed(e) => {
                        self.abandon();
                        return Err(if timed_out {
                            Error::Timeout(self.config.transaction_timeout)
                        } else if cancelling {
                            Error::Cancelled
                        } else if e == HidError::Timeout {
                            Error::Timeout(self.config.inactivity_timeout)
                        } else {
                            hid(e)
                        });
                    }
                    other => return Ok(other),
                }
            }
            if self.client.is_idle() {
                // Every transaction ends with an event, so this is not reached; fail
                // cleanly rather than wait forever if it ever is.
                self.abandon();
                return Err(Error::Hid {
                    device: self.pipe.describe(),
                    message: "CTAPHID transaction ended without an outcome".into(),
                });
            }
            let now = Instant::now();
            if !cancelling && !timed_out {
                if self.cancel.is_cancelled() {
                    cancelling = true;
                    // Only fails without a transaction, which is excluded above.
                    let _ = self.client.cancel(now);
                    continue;
                }
                if now >= deadline {
                    timed_out = true;
                    let _ = self.client.cancel(now);
                    continue;
                }
            }
            let Some(due) = self.client.poll_timeout() else {
                continue;
            };
            if now >= due {
                self.client.handle_timeout(now);
                continue;
            }
            let mut wait = (due - now).min(self.config.read_slice);
            if !cancelling && !timed_out {
                wait = wait.min(deadline.saturating_duration_since(now));
            }
            let report = match self.pipe.read_report(wait) {
                Ok(r) => r,
                Err(e) => {
                    self.abandon();
                    return Err(e);
                }
            };
            if let Some(report) = report {
                match self.client.handle_report(&report, Instant::now()) {
                    Ok(()) => {}
                    Err(e @ HidError::ReportLength { .. }) => {
                        // A truncated or overlong report: the stream is not trustworthy.
                        self.abandon();
                        return Err(hid(e));
                    }
                    // Either the transaction failed (a `Failed` event is queued and
                    // handled above) or this single report was rejected and ignored.
                    Err(_) => {}
                }
            }
        }
    }
}

impl<P: ReportPipe> Transport for CtapHidTransport<P> {
    fn transact(
        &mut self,
        request: &[u8],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<u8>, Error> {
        // A key whose CTAPHID_INIT answer lacks the CBOR capability speaks U2F (CTAP1)
        // only (YubiKey NEO, older keys): say so instead of a generic ERR_INVALID_CMD.
        if !self.info.capabilities.contains(Capabilities::CBOR) {
            return Err(Error::Unsupported(format!(
                "{} is a U2F-only (CTAP1) security key: it has no CTAP2 and cannot hold passkeys",
                self.describe()
            )));
        }
        let response = self.request(Command::Cbor, request, progress)?;
        if response.is_empty() {
            return Err(hid(HidError::LengthMismatch {
                field: "CTAPHID_CBOR response",
                len: 0,
                reason: "must carry at least the CTAP status byte",
            }));
        }
        Ok(response)
    }

    fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    fn kind(&self) -> TransportKind {
        self.pipe.kind()
    }

    fn describe(&self) -> String {
        self.pipe.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fido_core::ctaphid::{DeviceConfig, DeviceEvent, HidDevice, REPORT_LEN};
    use std::collections::VecDeque;

    /// A synchronous loopback: fido-core's device machine answers every request at
    /// once with `answer(request)`.
    struct Loopback {
        device: HidDevice,
        out: VecDeque<Vec<u8>>,
        answer: fn(&[u8]) -> Vec<u8>,
        requests: usize,
    }

    impl Loopback {
        fn new(answer: fn(&[u8]) -> Vec<u8>) -> Self {
            Loopback {
                device: HidDevice::new(DeviceConfig::default()),
                out: VecDeque::new(),
                answer,
                requests: 0,
            }
        }
    }

    impl ReportPipe for Loopback {
        fn write_report(&mut self, report: &[u8; REPORT_LEN]) -> Result<(), Error> {
            let _ = self.device.handle_report(report, Instant::now());
            while let Some(ev) = self.device.poll_event() {
                if let DeviceEvent::Request { cid, cmd, payload } = ev {
                    self.requests += 1;
                    let answer = (self.answer)(&payload);
                    self.device.respond(cid, cmd, &answer).map_err(hid)?;
                }
            }
            while let Some(r) = self.device.poll_transmit() {
                self.out.push_back(r.to_vec());
            }
            Ok(())
        }
        fn read_report(&mut self, _timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
            Ok(self.out.pop_front())
        }
        fn describe(&self) -> String {
            "loopback".into()
        }
    }

    fn quick() -> HidConfig {
        HidConfig {
            inactivity_timeout: Duration::from_millis(50),
            drain_quiet: Duration::from_millis(1),
            ..HidConfig::default()
        }
    }

    #[test]
    fn allocates_a_channel_and_carries_cbor() {
        let mut t = CtapHidTransport::with_config(Loopback::new(|r| r.to_vec()), quick()).unwrap();
        assert!(t.channel().is_allocatable());
        assert!(t.capabilities().contains(Capabilities::CBOR));
        assert_eq!(t.transact(&[0x04, 1], &mut |_| {}).unwrap(), [0x04, 1]);
        assert_eq!(t.kind(), TransportKind::Usb);
        assert_eq!(t.describe(), "loopback");
        assert_eq!(t.pipe_mut().requests, 1);
    }

    #[test]
    fn empty_cbor_answer_is_rejected_but_ping_of_nothing_is_fine() {
        let mut t = CtapHidTransport::with_config(Loopback::new(|_| Vec::new()), quick()).unwrap();
        let err = t.transact(&[0x04], &mut |_| {}).unwrap_err();
        assert!(matches!(
            err,
            Error::Core(fido_core::Error::Hid(HidError::LengthMismatch {
                len: 0,
                ..
            }))
        ));
        // PING is answered by the device machine itself.
        t.ping(&[]).unwrap();
    }

    #[test]
    fn resync_allocates_a_new_channel() {
        let mut t = CtapHidTransport::with_config(Loopback::new(|r| r.to_vec()), quick()).unwrap();
        let first = t.channel();
        t.resync().unwrap();
        assert_ne!(t.channel(), first);
        assert_eq!(t.transact(&[0x01], &mut |_| {}).unwrap(), [0x01]);
    }

    #[test]
    fn default_config_is_sane() {
        let c = HidConfig::default();
        assert_eq!(c.inactivity_timeout, DEFAULT_INACTIVITY_TIMEOUT);
        assert!(c.read_slice <= Duration::from_millis(100));
        assert!(c.transaction_timeout > c.inactivity_timeout);
        assert!(c.busy_retries > 0);
    }
}
