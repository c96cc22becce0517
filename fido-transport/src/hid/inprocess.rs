//! An in-process key behind real 64-byte CTAPHID reports.
//!
//! [`InProcessHid`] runs fido-core's device-side state machine
//! ([`HidDevice`](fido_core::ctaphid::HidDevice)) on its own thread and hands complete
//! CTAP2 requests to a [`CtapHandler`] (the software authenticator, or a test double).
//! The host side is a [`ReportPipe`], so [`CtapHidTransport`](super::CtapHidTransport)
//! drives it exactly as it drives a USB key. Filters on both directions let tests drop,
//! alter, delay or inject reports.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::time::{Duration, Instant};

use fido_core::ctaphid::{
    Cid, Command, DeviceConfig, DeviceEvent, HidDevice, HidErrorCode, KeepaliveStatus,
};

use super::{ReportPipe, REPORT_LEN};
use crate::{Error, TransportKind};

/// CTAP2_ERR_KEEPALIVE_CANCEL, the answer to a cancelled request.
const STATUS_KEEPALIVE_CANCEL: u8 = 0x2d;
/// How long the device thread sleeps waiting for host reports when idle.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// Answers CTAP2 requests for an [`InProcessHid`].
///
/// `request` is the CTAP2 command byte and CBOR parameters; the answer is the status
/// byte and CBOR response. While working (for example waiting for user presence) the
/// handler should call [`RequestContext::keepalive`] about every 100 ms and stop with
/// CTAP2_ERR_KEEPALIVE_CANCEL (`[0x2D]`) once [`RequestContext::is_cancelled`] is true.
pub trait CtapHandler: Send {
    /// Answers one CTAP2 request.
    fn handle(&mut self, request: &[u8], ctx: &mut RequestContext<'_>) -> Vec<u8>;

    /// CTAPHID_WINK: show the user which key this is. Does nothing by default.
    fn wink(&mut self) {}
}

struct FnHandler<F>(F);

impl<F> CtapHandler for FnHandler<F>
where
    F: FnMut(&[u8], &mut RequestContext<'_>) -> Vec<u8> + Send,
{
    fn handle(&mut self, request: &[u8], ctx: &mut RequestContext<'_>) -> Vec<u8> {
        (self.0)(request, ctx)
    }
}

/// What a [`CtapHandler`] can do while it works on a request: send keepalives and see
/// whether the host cancelled.
pub struct RequestContext<'a> {
    link: &'a mut DeviceLink,
    cid: Cid,
    cancelled: bool,
}

impl std::fmt::Debug for RequestContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("cid", &self.cid)
            .field("cancelled", &self.cancelled)
            .finish_non_exhaustive()
    }
}

impl RequestContext<'_> {
    /// Sends a CTAPHID_KEEPALIVE with `status` to the host (and processes whatever the
    /// host sent meanwhile, such as CTAPHID_CANCEL).
    pub fn keepalive(&mut self, status: KeepaliveStatus) {
        self.pump();
        if !self.cancelled && self.link.device.send_keepalive(self.cid, status).is_err() {
            // The channel was resynchronised away under us: nobody waits any more.
            self.cancelled = true;
        }
        self.link.flush();
    }

    /// Whether the host cancelled this request (CTAPHID_CANCEL, a resynchronising
    /// INIT on the channel, or the host side of the pipe went away).
    pub fn is_cancelled(&mut self) -> bool {
        self.pump();
        self.cancelled
    }

    /// The channel this request came in on.
    pub fn channel(&self) -> Cid {
        self.cid
    }

    fn pump(&mut self) {
        loop {
            match self.link.from_host.try_recv() {
                Ok(report) => {
                    // Framing errors are answered on the wire by the state machine.
                    let _ = self.link.device.handle_report(&report, Instant::now());
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    self.cancelled = true;
                    break;
                }
            }
        }
        self.link.device.handle_timeout(Instant::now());
        while let Some(event) = self.link.device.poll_event() {
            if let DeviceEvent::Cancel { cid } = event {
                if cid == self.cid {
                    self.cancelled = true;
                }
            }
        }
        if self.link.device.busy_channel() != Some(self.cid) {
            self.cancelled = true;
        }
        self.link.flush();
    }
}

/// The device thread's state: the CTAPHID machine and its two queues.
struct DeviceLink {
    device: HidDevice,
    from_host: Receiver<Vec<u8>>,
    to_host: Sender<[u8; REPORT_LEN]>,
    host_gone: bool,
}

impl DeviceLink {
    fn flush(&mut self) {
        while let Some(report) = self.device.poll_transmit() {
            if self.to_host.send(report).is_err() {
                self.host_gone = true;
            }
        }
    }

    fn run(mut self, mut handler: Box<dyn CtapHandler>) {
        while !self.host_gone {
            let wait = self
                .device
                .poll_timeout()
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(IDLE_POLL)
                .min(IDLE_POLL);
            match self.from_host.recv_timeout(wait) {
                Ok(report) => {
                    let _ = self.device.handle_report(&report, Instant::now());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.device.handle_timeout(Instant::now());
            self.flush();
            while let Some(event) = self.device.poll_event() {
                if let DeviceEvent::Request { cid, cmd, payload } = event {
                    self.serve(handler.as_mut(), cid, cmd, &payload);
                }
                self.flush();
            }
        }
    }

    fn serve(&mut self, handler: &mut dyn CtapHandler, cid: Cid, cmd: Command, payload: &[u8]) {
        match cmd {
            Command::Cbor => {
                let mut ctx = RequestContext {
                    link: self,
                    cid,
                    cancelled: false,
                };
                let mut answer = handler.handle(payload, &mut ctx);
                let cancelled = ctx.cancelled;
                if answer.is_empty() && cancelled {
                    answer = vec![STATUS_KEEPALIVE_CANCEL];
                }
                // Fails only when the channel was resynchronised meanwhile: then the
                // answer is not wanted.
                let _ = self.device.respond(cid, Command::Cbor, &answer);
            }
            Command::Wink => {
                handler.wink();
                let _ = self.device.respond(cid, Command::Wink, &[]);
            }
            _ => {
                // No CTAP1/U2F (CAPABILITY_NMSG), no LOCK, no vendor commands.
                let _ = self.device.respond_error(cid, HidErrorCode::InvalidCmd);
            }
        }
    }
}

/// Rewrites reports crossing the pipe in one direction: each report goes in, the
/// reports to deliver instead come out (none to drop it, several to inject). Reports
/// coming out may have any length, to simulate truncated or overlong reads. A filter
/// on the host-bound direction runs on the reading thread, so sleeping in it delays
/// delivery.
pub type ReportFilter = Box<dyn FnMut(Vec<u8>) -> Vec<Vec<u8>> + Send>;

/// An in-process CTAPHID key: a [`ReportPipe`] whose other end is fido-core's
/// `HidDevice` state machine and a [`CtapHandler`], running on their own thread.
///
/// The device thread ends when this value is dropped (once the handler returns).
pub struct InProcessHid {
    to_device: Sender<Vec<u8>>,
    from_device: Receiver<[u8; REPORT_LEN]>,
    pending: VecDeque<Vec<u8>>,
    to_host_filter: Option<ReportFilter>,
    to_device_filter: Option<ReportFilter>,
    name: String,
}

impl std::fmt::Debug for InProcessHid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessHid")
            .field("name", &self.name)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl InProcessHid {
    /// Starts a key with the default [`DeviceConfig`] answering with `handler`.
    pub fn new(handler: impl CtapHandler + 'static) -> Self {
        Self::with_config(handler, DeviceConfig::default())
    }

    /// Starts a key whose handler is a closure.
    pub fn from_fn<F>(handler: F) -> Self
    where
        F: FnMut(&[u8], &mut RequestContext<'_>) -> Vec<u8> + Send + 'static,
    {
        Self::new(FnHandler(handler))
    }

    /// Starts a key with the given CTAPHID device configuration.
    pub fn with_config(handler: impl CtapHandler + 'static, config: DeviceConfig) -> Self {
        let (to_device, from_host) = mpsc::channel();
        let (to_host, from_device) = mpsc::channel();
        let link = DeviceLink {
            device: HidDevice::new(config),
            from_host,
            to_host,
            host_gone: false,
        };
        let handler: Box<dyn CtapHandler> = Box::new(handler);
        // The thread is detached: it ends by itself when this pipe is dropped.
        let _detached = std::thread::Builder::new()
            .name("keysmith-inprocess-hid".into())
            .spawn(move || link.run(handler));
        InProcessHid {
            to_device,
            from_device,
            pending: VecDeque::new(),
            to_host_filter: None,
            to_device_filter: None,
            name: "in-process CTAPHID key".into(),
        }
    }

    /// Passes every report from the key through `filter` before the host reads it.
    pub fn filter_to_host(
        mut self,
        filter: impl FnMut(Vec<u8>) -> Vec<Vec<u8>> + Send + 'static,
    ) -> Self {
        self.to_host_filter = Some(Box::new(filter));
        self
    }

    /// Passes every report from the host through `filter` before the key sees it.
    pub fn filter_to_device(
        mut self,
        filter: impl FnMut(Vec<u8>) -> Vec<Vec<u8>> + Send + 'static,
    ) -> Self {
        self.to_device_filter = Some(Box::new(filter));
        self
    }

    /// Queues a report (any length) for the host to read before the key's next one.
    pub fn inject_to_host(&mut self, report: Vec<u8>) {
        self.pending.push_back(report);
    }

    /// Sends a raw report (any length) to the key, bypassing the filter.
    pub fn inject_to_device(&mut self, report: Vec<u8>) -> Result<(), Error> {
        self.to_device.send(report).map_err(|_| self.stopped())
    }

    /// Sets the name returned by [`ReportPipe::describe`].
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn stopped(&self) -> Error {
        Error::Hid {
            device: self.name.clone(),
            message: "the in-process key has stopped".into(),
        }
    }
}

impl ReportPipe for InProcessHid {
    fn write_report(&mut self, report: &[u8; REPORT_LEN]) -> Result<(), Error> {
        let reports = match self.to_device_filter.as_mut() {
            Some(f) => f(report.to_vec()),
            None => vec![report.to_vec()],
        };
        for r in reports {
            self.to_device.send(r).map_err(|_| self.stopped())?;
        }
        Ok(())
    }

    fn read_report(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Ok(Some(r));
            }
            let left = until.saturating_duration_since(Instant::now());
            let report = match self.from_device.recv_timeout(left) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => return Ok(None),
                Err(RecvTimeoutError::Disconnected) => return Err(self.stopped()),
            };
            match self.to_host_filter.as_mut() {
                Some(f) => self.pending.extend(f(report.to_vec())),
                None => return Ok(Some(report.to_vec())),
            }
        }
    }

    fn describe(&self) -> String {
        self.name.clone()
    }

    fn kind(&self) -> TransportKind {
        TransportKind::InProcess
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fido_core::ctaphid::fragment;

    fn init_request() -> [u8; REPORT_LEN] {
        let r = fragment(Cid::BROADCAST, Command::Init, &[9; 8]);
        r.ok()
            .and_then(|v| v.first().copied())
            .unwrap_or([0; REPORT_LEN])
    }

    #[test]
    fn answers_init_at_the_report_level() {
        let mut key =
            InProcessHid::from_fn(|req: &[u8], _ctx: &mut RequestContext<'_>| req.to_vec());
        assert_eq!(key.kind(), TransportKind::InProcess);
        key.write_report(&init_request()).unwrap();
        let answer = key.read_report(Duration::from_secs(2)).unwrap().unwrap();
        assert_eq!(answer.len(), REPORT_LEN);
        assert_eq!(&answer[..7], &[0xff, 0xff, 0xff, 0xff, 0x86, 0, 17]);
        assert_eq!(&answer[7..15], &[9; 8]);
        assert_eq!(key.read_report(Duration::from_millis(20)).unwrap(), None);
    }

    #[test]
    fn filters_and_injection_apply() {
        let mut key =
            InProcessHid::from_fn(|req: &[u8], _ctx: &mut RequestContext<'_>| req.to_vec())
                .filter_to_host(|r| vec![r[..10].to_vec(), r])
                .with_name("filtered");
        assert_eq!(key.describe(), "filtered");
        key.inject_to_host(vec![1, 2, 3]);
        key.write_report(&init_request()).unwrap();
        let t = Duration::from_secs(2);
        assert_eq!(key.read_report(t).unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(key.read_report(t).unwrap().map(|r| r.len()), Some(10));
        assert_eq!(key.read_report(t).unwrap().map(|r| r.len()), Some(64));
    }

    #[test]
    fn filter_to_device_can_drop_everything() {
        let mut key =
            InProcessHid::from_fn(|req: &[u8], _ctx: &mut RequestContext<'_>| req.to_vec())
                .filter_to_device(|_r| vec![]);
        key.write_report(&init_request()).unwrap();
        assert_eq!(key.read_report(Duration::from_millis(100)).unwrap(), None);
        // Bypassing the filter reaches the key.
        key.inject_to_device(init_request().to_vec()).unwrap();
        assert!(key.read_report(Duration::from_secs(2)).unwrap().is_some());
    }
}
