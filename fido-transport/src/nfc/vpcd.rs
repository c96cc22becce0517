//! A virtual smart card for vsmartcard's `vpcd` reader driver.
//!
//! `vpcd` is a PC/SC reader driver loaded by pcscd that listens on TCP (port 35963 for
//! its first slot) and waits for a card to connect. Both directions carry frames of a
//! 2-byte big-endian length followed by the payload. A 1-byte payload from vpcd is a
//! control byte (power off, power on, reset, get ATR); anything longer is a command
//! APDU, answered with response data + SW1 SW2.
//!
//! [`VpcdCard`] is the card side without IO: it turns one vpcd frame into the reply
//! frame, using a [`fido_core::apdu::VirtualCard`] with a chosen personality for the
//! ISO 7816 / NFCCTAP framing and handing complete CTAP messages to a [`CardApplet`]
//! (the software authenticator). [`VpcdCardHandle::spawn`] runs it in a background
//! thread that connects to vpcd, reconnects after a drop, and stops on request.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fido_core::apdu::{CardConfig, CardOutput, ResponseApdu, StatusWord, VirtualCard};
use zeroize::Zeroize;

use crate::Error;

/// Where vpcd's first slot (reader `Virtual PCD 00 00`) waits for a card.
pub const DEFAULT_VPCD_ADDR: &str = "127.0.0.1:35963";

/// Largest payload of one vpcd frame (the length prefix is 16 bits).
pub const MAX_FRAME_PAYLOAD: usize = 65_535;

/// The ATR the card reports unless told otherwise: `3B 80 80 01 01`, a minimal
/// T=1 ATR without historical bytes, as PC/SC readers report for contactless cards.
pub const DEFAULT_ATR: [u8; 5] = [0x3B, 0x80, 0x80, 0x01, 0x01];

/// How long to wait before connecting again after vpcd dropped the connection (or was
/// not reachable). pcscd can lose track of a card that comes back within ~0.2 s.
pub const DEFAULT_RECONNECT_DELAY: Duration = Duration::from_millis(1500);

/// vpcd control byte: power the card off.
const CTRL_POWER_OFF: u8 = 0x00;
/// vpcd control byte: power the card on.
const CTRL_POWER_ON: u8 = 0x01;
/// vpcd control byte: warm reset.
const CTRL_RESET: u8 = 0x02;
/// vpcd control byte: send the ATR.
const CTRL_GET_ATR: u8 = 0x04;

/// How often the card thread looks at its stop flag while waiting for vpcd.
const POLL_SLICE: Duration = Duration::from_millis(100);

/// The authenticator behind the virtual card.
///
/// Any `FnMut(&[u8]) -> Vec<u8> + Send` closure is a `CardApplet` (without a power
/// hook).
pub trait CardApplet: Send {
    /// Runs one CTAP request (command byte + CBOR) and returns the answer (status byte
    /// + CBOR).
    fn ctap(&mut self, request: &[u8]) -> Vec<u8>;

    /// The card was powered up again (after power-off or a reset). An authenticator
    /// opens its reset window here. The default does nothing.
    fn power_cycle(&mut self) {}
}

impl<F> CardApplet for F
where
    F: FnMut(&[u8]) -> Vec<u8> + Send,
{
    fn ctap(&mut self, request: &[u8]) -> Vec<u8> {
        self(request)
    }
}

/// The card side of the vpcd protocol, without IO: one frame in, at most one frame out.
pub struct VpcdCard {
    card: VirtualCard,
    applet: Box<dyn CardApplet>,
    atr: Vec<u8>,
    power_ups: u64,
}

impl VpcdCard {
    /// A card with the given personality that hands CTAP messages to `applet`.
    pub fn new(config: CardConfig, applet: impl CardApplet + 'static) -> Self {
        Self {
            card: VirtualCard::new(config),
            applet: Box::new(applet),
            atr: DEFAULT_ATR.to_vec(),
            power_ups: 0,
        }
    }

    /// The same card reporting another ATR.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the ATR is empty or longer than 33 bytes (the
    /// ISO 7816-3 maximum).
    pub fn with_atr(mut self, atr: &[u8]) -> Result<Self, Error> {
        check_atr(atr)?;
        self.atr = atr.to_vec();
        Ok(self)
    }

    /// The card's personality.
    pub fn config(&self) -> &CardConfig {
        self.card.config()
    }

    /// Swaps in a fresh card with another personality (not selected, nothing pending).
    pub fn set_config(&mut self, config: CardConfig) {
        self.card = VirtualCard::new(config);
    }

    /// How many times the card was powered up (power on or reset) so far.
    pub fn power_ups(&self) -> u64 {
        self.power_ups
    }

    /// The connection to the reader was lost: the card loses power.
    pub fn power_lost(&mut self) {
        self.card.reset();
    }

    /// Handles one frame payload from vpcd; returns the payload of the reply frame, if
    /// the frame needs one (control bytes other than "get ATR" do not).
    pub fn handle_frame(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        match payload {
            [] => None,
            [CTRL_POWER_OFF] => {
                self.card.reset();
                None
            }
            [CTRL_POWER_ON] | [CTRL_RESET] => {
                self.card.reset();
                self.power_ups = self.power_ups.saturating_add(1);
                self.applet.power_cycle();
                None
            }
            [CTRL_GET_ATR] => Some(self.atr.clone()),
            // Unknown control bytes have no defined answer; vpcd does not wait for one.
            [_] => None,
            apdu => Some(self.handle_apdu(apdu)),
        }
    }

    fn handle_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        match self.card.handle_apdu(apdu) {
            CardOutput::Response(bytes) => bytes,
            CardOutput::CtapRequest(mut request) => {
                let mut answer = self.applet.ctap(&request);
                request.zeroize();
                let reply = self.card.ctap_response(&answer);
                answer.zeroize();
                reply.unwrap_or_else(internal_error)
            }
            // Only reachable after `status_update`, which this synchronous card never
            // calls; answer as a cancelled authenticator would.
            CardOutput::CancelRequested => self
                .card
                .ctap_response(&[CTAP2_ERR_KEEPALIVE_CANCEL])
                .unwrap_or_else(internal_error),
        }
    }
}

/// CTAP2_ERR_KEEPALIVE_CANCEL.
const CTAP2_ERR_KEEPALIVE_CANCEL: u8 = 0x2D;

fn internal_error() -> Vec<u8> {
    ResponseApdu::status(StatusWord::NoPreciseDiagnosis).encode()
}

fn check_atr(atr: &[u8]) -> Result<(), Error> {
    if atr.is_empty() || atr.len() > 33 {
        return Err(Error::InvalidArgument(format!(
            "ATR must be 1 to 33 bytes long, got {} bytes",
            atr.len()
        )));
    }
    Ok(())
}

impl fmt::Debug for VpcdCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VpcdCard")
            .field("card", &self.card)
            .field("atr_len", &self.atr.len())
            .field("power_ups", &self.power_ups)
            .finish_non_exhaustive()
    }
}

/// Encodes one vpcd frame: 2-byte big-endian length, then the payload.
///
/// # Errors
/// [`Error::InvalidArgument`] when the payload is longer than [`MAX_FRAME_PAYLOAD`].
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, Error> {
    let len = u16::try_from(payload.len()).map_err(|_| {
        Error::InvalidArgument(format!(
            "a vpcd frame carries at most {MAX_FRAME_PAYLOAD} bytes, got {}",
            payload.len()
        ))
    })?;
    let mut out = Vec::with_capacity(payload.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// Settings of a card thread started with [`VpcdCardHandle::spawn`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VpcdCardOptions {
    /// vpcd's address (`host:port`); default [`DEFAULT_VPCD_ADDR`].
    pub addr: String,
    /// The card's personality.
    pub config: CardConfig,
    /// The ATR; default [`DEFAULT_ATR`].
    pub atr: Vec<u8>,
    /// Wait before (re)connecting after a drop or a failed connect; default
    /// [`DEFAULT_RECONNECT_DELAY`].
    pub reconnect_delay: Duration,
}

impl VpcdCardOptions {
    /// Defaults with the given personality.
    pub fn new(config: CardConfig) -> Self {
        Self {
            addr: DEFAULT_VPCD_ADDR.to_owned(),
            config,
            atr: DEFAULT_ATR.to_vec(),
            reconnect_delay: DEFAULT_RECONNECT_DELAY,
        }
    }

    /// The same options with another vpcd address.
    #[must_use]
    pub fn with_addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = addr.into();
        self
    }

    /// The same options with another reconnect delay.
    #[must_use]
    pub fn with_reconnect_delay(mut self, delay: Duration) -> Self {
        self.reconnect_delay = delay;
        self
    }
}

impl Default for VpcdCardOptions {
    fn default() -> Self {
        Self::new(CardConfig::default())
    }
}

#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    connected: AtomicBool,
    connections: AtomicU64,
    power_ups: AtomicU64,
    apdus: AtomicU64,
    new_config: Mutex<Option<CardConfig>>,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn set_error(&self, message: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(message);
    }

    fn take_config(&self) -> Option<CardConfig> {
        self.new_config
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps `total` in short slices; false when asked to stop meanwhile.
    fn sleep(&self, total: Duration) -> bool {
        let end = Instant::now() + total;
        while !self.stopped() {
            let now = Instant::now();
            if now >= end {
                return true;
            }
            std::thread::sleep((end - now).min(POLL_SLICE));
        }
        false
    }
}

/// A virtual card running in a background thread, connected (or connecting) to vpcd.
///
/// Dropping the handle stops the thread (as [`VpcdCardHandle::stop`] does).
#[derive(Debug)]
pub struct VpcdCardHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl VpcdCardHandle {
    /// Starts a card thread that connects to vpcd at `options.addr`, answers it with a
    /// [`VpcdCard`] of `options.config` around `applet`, and reconnects after
    /// `options.reconnect_delay` whenever the connection drops or cannot be made.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an unusable address or ATR, [`Error::Io`] when the
    /// thread cannot be started.
    pub fn spawn(
        options: VpcdCardOptions,
        applet: impl CardApplet + 'static,
    ) -> Result<Self, Error> {
        check_atr(&options.atr)?;
        let addr = options
            .addr
            .to_socket_addrs()
            .map_err(|e| Error::InvalidArgument(format!("vpcd address {:?}: {e}", options.addr)))?
            .next()
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "vpcd address {:?} resolves to nothing",
                    options.addr
                ))
            })?;
        let mut card = VpcdCard::new(options.config, applet);
        card.atr = options.atr;
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        let delay = options.reconnect_delay;
        let thread = std::thread::Builder::new()
            .name(format!("vpcd-card {addr}"))
            .spawn(move || run(&thread_shared, addr, delay, card))
            .map_err(|e| Error::Io {
                context: "starting the vpcd card thread".to_owned(),
                message: e.to_string(),
            })?;
        Ok(Self {
            shared,
            addr,
            thread: Some(thread),
        })
    }

    /// vpcd's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the card is connected to vpcd right now.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// How many connections to vpcd were made so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many times the reader powered the card up (power on or reset) so far.
    pub fn power_ups(&self) -> u64 {
        self.shared.power_ups.load(Ordering::SeqCst)
    }

    /// How many command APDUs the card answered so far.
    pub fn apdus(&self) -> u64 {
        self.shared.apdus.load(Ordering::SeqCst)
    }

    /// The last connection problem, in words (for diagnostics).
    pub fn last_error(&self) -> Option<String> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the card with a fresh one of another personality before the next frame
    /// from vpcd is handled. The new card is not selected: connect (and SELECT) again.
    pub fn set_config(&self, config: CardConfig) {
        *self
            .shared
            .new_config
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(config);
    }

    /// Waits until the card is connected to vpcd; false on timeout.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if self.is_connected() {
                return true;
            }
            let finished = match &self.thread {
                Some(thread) => thread.is_finished(),
                None => true,
            };
            if finished || Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the thread (closing the connection to vpcd) and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // A panic in the applet ends the thread; nothing more to do about it here.
            let _ = thread.join();
        }
    }
}

impl Drop for VpcdCardHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(shared: &Shared, addr: SocketAddr, delay: Duration, mut card: VpcdCard) {
    let mut first = true;
    while !shared.stopped() {
        if !first && !shared.sleep(delay) {
            break;
        }
        first = false;
        let mut stream = match connect(addr) {
            Ok(stream) => stream,
            Err(e) => {
                shared.set_error(format!("connecting to vpcd at {addr}: {e}"));
                continue;
            }
        };
        shared.connected.store(true, Ordering::SeqCst);
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let result = serve(shared, &mut stream, &mut card);
        shared.connected.store(false, Ordering::SeqCst);
        card.power_lost();
        if let Err(e) = result {
            shared.set_error(format!("connection to vpcd at {addr}: {e}"));
        }
    }
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POLL_SLICE))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    quick_ack(&stream);
    Ok(stream)
}

/// Asks the kernel to acknowledge incoming data at once. vpcd writes a frame's length
/// and its payload in two sends with Nagle's algorithm on, so the payload waits for
/// the ACK of the length; a delayed ACK (~40 ms) would then slow every APDU down. The
/// kernel leaves quick-ACK mode by itself, so this is renewed around every read and
/// write. Best effort: without it the card is only slower.
fn quick_ack(stream: &TcpStream) {
    #[cfg(target_os = "linux")]
    {
        let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = stream;
    }
}

/// Answers frames until vpcd closes, an IO error, or a stop request (then `Ok`).
fn serve(shared: &Shared, stream: &mut TcpStream, card: &mut VpcdCard) -> io::Result<()> {
    let mut header = [0u8; 2];
    loop {
        if !read_full(shared, stream, &mut header)? {
            return Ok(());
        }
        let len = usize::from(u16::from_be_bytes(header));
        let mut payload = vec![0u8; len];
        if !read_full(shared, stream, &mut payload)? {
            return Ok(());
        }
        if let Some(config) = shared.take_config() {
            card.set_config(config);
        }
        let reply = card.handle_frame(&payload);
        if payload.len() > 1 {
            shared.apdus.fetch_add(1, Ordering::SeqCst);
        }
        shared.power_ups.store(card.power_ups(), Ordering::SeqCst);
        payload.zeroize();
        if let Some(mut reply) = reply {
            // Replies come from VirtualCard, bounded by the 65535-byte message limit
            // plus SW; should one ever be larger, answer 6F00 instead of a bad frame.
            let frame = encode_frame(&reply).or_else(|_| encode_frame(&internal_error()));
            reply.zeroize();
            if let Ok(mut frame) = frame {
                let written = stream.write_all(&frame).and_then(|()| stream.flush());
                quick_ack(stream);
                frame.zeroize();
                written?;
            }
        }
    }
}

/// Fills `buf`, waiting in slices so a stop request is seen. Returns false when asked
/// to stop.
fn read_full(shared: &Shared, stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match stream.read(rest) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "vpcd closed the connection",
                ))
            }
            Ok(n) => {
                filled += n;
                quick_ack(stream);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if shared.stopped() {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fido_core::apdu::FIDO_AID;
    use std::net::TcpListener;
    use std::sync::atomic::AtomicUsize;

    struct Echo {
        power: Arc<AtomicUsize>,
    }

    impl CardApplet for Echo {
        fn ctap(&mut self, request: &[u8]) -> Vec<u8> {
            let mut out = vec![0x00];
            out.extend_from_slice(request.get(1..).unwrap_or_default());
            out
        }
        fn power_cycle(&mut self) {
            self.power.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn select_apdu() -> Vec<u8> {
        let mut v = vec![0x00, 0xA4, 0x04, 0x00, 0x08];
        v.extend_from_slice(&FIDO_AID);
        v.push(0x00);
        v
    }

    #[test]
    fn frame_encoding_is_length_prefixed_and_bounded() {
        assert_eq!(encode_frame(&[0x04]).ok(), Some(vec![0x00, 0x01, 0x04]));
        assert_eq!(encode_frame(&[]).ok(), Some(vec![0x00, 0x00]));
        let max = vec![0xAB; MAX_FRAME_PAYLOAD];
        let frame = encode_frame(&max).unwrap_or_default();
        assert_eq!(frame.get(..2), Some(&[0xFF, 0xFF][..]));
        assert_eq!(frame.len(), MAX_FRAME_PAYLOAD + 2);
        assert!(matches!(
            encode_frame(&vec![0; MAX_FRAME_PAYLOAD + 1]),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn control_bytes_power_and_atr() {
        let power = Arc::new(AtomicUsize::new(0));
        let mut card = VpcdCard::new(
            CardConfig::extended(),
            Echo {
                power: Arc::clone(&power),
            },
        );
        assert_eq!(
            card.handle_frame(&[CTRL_GET_ATR]),
            Some(DEFAULT_ATR.to_vec())
        );
        assert_eq!(card.handle_frame(&[CTRL_POWER_ON]), None);
        assert_eq!(power.load(Ordering::SeqCst), 1);
        assert_eq!(card.handle_frame(&[CTRL_RESET]), None);
        assert_eq!(power.load(Ordering::SeqCst), 2);
        assert_eq!(card.power_ups(), 2);
        assert_eq!(card.handle_frame(&[CTRL_POWER_OFF]), None);
        assert_eq!(power.load(Ordering::SeqCst), 2);
        assert_eq!(card.handle_frame(&[0x77]), None);
        assert_eq!(card.handle_frame(&[]), None);
    }

    #[test]
    fn select_then_ctap_then_power_off_forgets_selection() {
        let mut card = VpcdCard::new(CardConfig::extended(), |req: &[u8]| {
            let mut out = vec![0x00];
            out.extend_from_slice(req);
            out
        });
        let rsp = card.handle_frame(&select_apdu()).unwrap_or_default();
        assert_eq!(rsp, b"FIDO_2_0\x90\x00".to_vec());
        // Short NFCCTAP_MSG, P1 = 0x80, data 04, Le 00.
        let msg = [0x80, 0x10, 0x80, 0x00, 0x01, 0x04, 0x00];
        assert_eq!(card.handle_frame(&msg), Some(vec![0x00, 0x04, 0x90, 0x00]));
        card.handle_frame(&[CTRL_POWER_OFF]);
        card.handle_frame(&[CTRL_POWER_ON]);
        // Not selected any more: conditions of use not satisfied.
        assert_eq!(card.handle_frame(&msg), Some(vec![0x69, 0x85]));
    }

    #[test]
    fn set_config_swaps_personality() {
        let mut card = VpcdCard::new(CardConfig::extended(), |_: &[u8]| vec![0x00]);
        card.handle_frame(&select_apdu());
        card.set_config(CardConfig::short_only());
        assert!(!card.config().extended_length);
        card.handle_frame(&select_apdu());
        // Extended NFCCTAP_MSG is refused by the short-only card.
        let ext = [0x80, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x00];
        assert_eq!(card.handle_frame(&ext), Some(vec![0x67, 0x00]));
    }

    #[test]
    fn bad_atr_is_rejected() {
        let card = VpcdCard::new(CardConfig::extended(), |_: &[u8]| vec![0x00]);
        assert!(matches!(card.with_atr(&[]), Err(Error::InvalidArgument(_))));
        let card = VpcdCard::new(CardConfig::extended(), |_: &[u8]| vec![0x00]);
        assert!(matches!(
            card.with_atr(&[0x3B; 34]),
            Err(Error::InvalidArgument(_))
        ));
        let card = VpcdCard::new(CardConfig::extended(), |_: &[u8]| vec![0x00]);
        let card = card.with_atr(&[0x3B, 0x00]);
        assert!(card.is_ok());
    }

    fn send(stream: &mut TcpStream, payload: &[u8]) {
        let frame = encode_frame(payload).unwrap_or_default();
        assert!(stream.write_all(&frame).is_ok());
    }

    fn recv(stream: &mut TcpStream) -> Vec<u8> {
        let mut header = [0u8; 2];
        assert!(stream.read_exact(&mut header).is_ok(), "reply header");
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(header))];
        assert!(stream.read_exact(&mut payload).is_ok(), "reply payload");
        payload
    }

    /// A fake vpcd (a local listener) exercises the real socket loop, including a
    /// frame split across writes, a reconnect after a drop, and stop.
    #[test]
    fn thread_speaks_vpcd_protocol_and_reconnects() {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0") else {
            panic!("cannot bind a local port");
        };
        let addr = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let power = Arc::new(AtomicUsize::new(0));
        let options = VpcdCardOptions::new(CardConfig::quirky())
            .with_addr(addr)
            .with_reconnect_delay(Duration::from_millis(50));
        let handle = VpcdCardHandle::spawn(
            options,
            Echo {
                power: Arc::clone(&power),
            },
        );
        let Ok(handle) = handle else {
            panic!("spawn failed");
        };
        let Ok((mut s, _)) = listener.accept() else {
            panic!("no connection");
        };
        assert!(s.set_read_timeout(Some(Duration::from_secs(5))).is_ok());
        send(&mut s, &[CTRL_GET_ATR]);
        assert_eq!(recv(&mut s), DEFAULT_ATR.to_vec());
        send(&mut s, &[CTRL_POWER_ON]);
        // SELECT split in two writes: the card must reassemble the frame.
        let frame = encode_frame(&select_apdu()).unwrap_or_default();
        let (a, b) = frame.split_at(3);
        assert!(s.write_all(a).is_ok());
        std::thread::sleep(Duration::from_millis(150));
        assert!(s.write_all(b).is_ok());
        // Quirky card: SELECT answered 61xx without data.
        assert_eq!(recv(&mut s), vec![0x61, 0x08]);
        send(&mut s, &[0x00, 0xC0, 0x00, 0x00, 0x08]);
        assert_eq!(recv(&mut s), b"FIDO_2_0\x90\x00".to_vec());
        assert_eq!(power.load(Ordering::SeqCst), 1);
        assert!(handle.is_connected());
        assert_eq!(handle.connections(), 1);
        assert_eq!(handle.power_ups(), 1);
        assert_eq!(handle.apdus(), 2);
        drop(s);
        // The card comes back after the delay.
        let Ok((mut s2, _)) = listener.accept() else {
            panic!("no reconnection");
        };
        assert!(s2.set_read_timeout(Some(Duration::from_secs(5))).is_ok());
        send(&mut s2, &[CTRL_GET_ATR]);
        assert_eq!(recv(&mut s2), DEFAULT_ATR.to_vec());
        assert_eq!(handle.connections(), 2);
        assert!(handle.last_error().is_some_and(|e| e.contains("closed")));
        handle.stop();
        // After stop the card closes its end.
        let mut buf = [0u8; 1];
        assert!(matches!(s2.read(&mut buf), Ok(0) | Err(_)));
    }

    #[test]
    fn unreachable_vpcd_is_retried_not_fatal() {
        // Bind then drop: the port is (very likely) closed now.
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.to_string())
            .unwrap_or_default();
        let options = VpcdCardOptions::new(CardConfig::extended())
            .with_addr(addr)
            .with_reconnect_delay(Duration::from_millis(20));
        let Ok(handle) = VpcdCardHandle::spawn(options, |_: &[u8]| vec![0x00]) else {
            panic!("spawn failed");
        };
        assert!(!handle.wait_connected(Duration::from_millis(300)));
        assert!(handle
            .last_error()
            .is_some_and(|e| e.contains("connecting")));
        handle.stop();
    }

    #[test]
    fn bad_address_is_an_error() {
        let options = VpcdCardOptions::new(CardConfig::extended()).with_addr("not an address");
        assert!(matches!(
            VpcdCardHandle::spawn(options, |_: &[u8]| vec![0x00]),
            Err(Error::InvalidArgument(_))
        ));
    }
}
