//! CTAPHID framing as a sans-IO state machine.
//!
//! CTAPHID carries CTAP messages over USB HID in fixed 64-byte reports. A message
//! starts with an *initialization* report (`CID(4) | CMD|0x80 | BCNT(2, big endian) |
//! 57 data bytes`) followed by up to 128 *continuation* reports (`CID(4) | SEQ(0..=127) |
//! 59 data bytes`), so a message holds at most [`MAX_MESSAGE_LEN`] (7609) bytes.
//!
//! Two state machines live here, both in the quinn-proto shape: no IO and no clock of
//! their own. Reports and the current time go in through `handle_*(…, now)`; reports to
//! write, events and the next deadline come out through `poll_*()`.
//!
//! - [`HidClient`]: the host side. Allocates a channel with CTAPHID_INIT, sends one
//!   request at a time, reassembles the response and reports keepalives ("touch your
//!   key"), device errors, cancellation and timeouts as [`Event`]s.
//! - [`HidDevice`]: the authenticator side, for the software authenticator. Allocates
//!   channels, reassembles requests, answers framing errors itself and hands complete
//!   requests to the application as [`DeviceEvent`]s.
//!
//! # The report boundary
//!
//! Both machines take and produce **exactly 64-byte** reports. Operating-system HID
//! APIs often prepend a report id (a 65-byte buffer starting with `0`); stripping and
//! adding it is the transport's job. Any other length given to `handle_report` is
//! rejected with [`HidError::ReportLength`] and changes nothing.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use fido_core::ctaphid::{Command, Event, HidClient, HidDevice, DeviceConfig, DeviceEvent};
//!
//! let now = Instant::now();
//! let mut host = HidClient::new(Duration::from_secs(1));
//! let mut key = HidDevice::new(DeviceConfig::default());
//!
//! // Moves every pending report from one side to the other.
//! fn pump(host: &mut HidClient, key: &mut HidDevice, now: Instant) {
//!     while let Some(r) = host.poll_transmit() {
//!         key.handle_report(&r, now).unwrap();
//!     }
//!     while let Some(r) = key.poll_transmit() {
//!         host.handle_report(&r, now).unwrap();
//!     }
//! }
//!
//! host.init([1, 2, 3, 4, 5, 6, 7, 8], now).unwrap();
//! pump(&mut host, &mut key, now);
//! assert!(matches!(host.poll_event(), Some(Event::Init(_))));
//!
//! host.send(Command::Cbor, &[0x04], now).unwrap(); // authenticatorGetInfo
//! pump(&mut host, &mut key, now);
//! let Some(DeviceEvent::Request { cid, payload, .. }) = key.poll_event() else { panic!() };
//! assert_eq!(payload, [0x04]);
//! key.respond(cid, Command::Cbor, &[0x00]).unwrap();
//! pump(&mut host, &mut key, now);
//! assert_eq!(
//!     host.poll_event(),
//!     Some(Event::Response { cmd: Command::Cbor, payload: vec![0x00] })
//! );
//! ```

mod device;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod host;

pub use device::{DeviceConfig, DeviceEvent, HidDevice};
pub use host::{Event, HidClient, DEFAULT_INACTIVITY_TIMEOUT};

/// Size of every CTAPHID report (without an OS-level report id).
pub const REPORT_LEN: usize = 64;
/// Payload bytes carried by an initialization report.
pub const INIT_DATA_LEN: usize = REPORT_LEN - 7;
/// Payload bytes carried by a continuation report.
pub const CONT_DATA_LEN: usize = REPORT_LEN - 5;
/// Highest continuation sequence number.
pub const MAX_SEQ: u8 = 0x7f;
/// Largest message CTAPHID can carry: one initialization report and 128 continuations.
pub const MAX_MESSAGE_LEN: usize = INIT_DATA_LEN + (MAX_SEQ as usize + 1) * CONT_DATA_LEN;
/// Length of the CTAPHID_INIT nonce.
pub const NONCE_LEN: usize = 8;
/// Length of a CTAPHID_INIT response payload.
pub const INIT_RESPONSE_LEN: usize = 17;
/// CTAPHID protocol version this module speaks.
pub const PROTOCOL_VERSION: u8 = 2;

/// A CTAPHID channel identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cid(pub u32);

impl Cid {
    /// The broadcast channel, used only for CTAPHID_INIT.
    pub const BROADCAST: Cid = Cid(0xffff_ffff);
    /// Channel 0 is reserved and never allocated.
    pub const RESERVED: Cid = Cid(0);

    /// The channel id as it appears on the wire (big endian).
    pub fn to_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// Reads a channel id from its wire form.
    pub fn from_bytes(bytes: [u8; 4]) -> Self {
        Cid(u32::from_be_bytes(bytes))
    }

    /// Whether this id can name an allocated channel (neither reserved nor broadcast).
    pub fn is_allocatable(self) -> bool {
        self != Cid::BROADCAST && self != Cid::RESERVED
    }
}

/// A CTAPHID command (the low 7 bits of the command byte). Unknown values are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// CTAPHID_PING (0x01): echo.
    Ping,
    /// CTAPHID_MSG (0x03): a U2F/CTAP1 APDU.
    Msg,
    /// CTAPHID_LOCK (0x04): exclusive channel lock.
    Lock,
    /// CTAPHID_INIT (0x06): channel allocation or resynchronisation.
    Init,
    /// CTAPHID_WINK (0x08): make the key blink.
    Wink,
    /// CTAPHID_CBOR (0x10): a CTAP2 CBOR command.
    Cbor,
    /// CTAPHID_CANCEL (0x11): abort the pending CBOR request on the channel.
    Cancel,
    /// CTAPHID_KEEPALIVE (0x3B): the key is still working.
    Keepalive,
    /// CTAPHID_ERROR (0x3F): a framing error reported by the key.
    Error,
    /// Any other command value (vendor commands are 0x40..=0x7F). Only the low seven
    /// bits go on the wire; [`HidClient::send`] rejects values above 0x7F.
    Other(u8),
}

impl Command {
    /// Reads a command from a command byte (the initialization bit 0x80 is ignored).
    pub fn from_u8(byte: u8) -> Self {
        match byte & 0x7f {
            0x01 => Command::Ping,
            0x03 => Command::Msg,
            0x04 => Command::Lock,
            0x06 => Command::Init,
            0x08 => Command::Wink,
            0x10 => Command::Cbor,
            0x11 => Command::Cancel,
            0x3b => Command::Keepalive,
            0x3f => Command::Error,
            other => Command::Other(other),
        }
    }

    /// The command value (without the initialization bit).
    pub fn to_u8(self) -> u8 {
        match self {
            Command::Ping => 0x01,
            Command::Msg => 0x03,
            Command::Lock => 0x04,
            Command::Init => 0x06,
            Command::Wink => 0x08,
            Command::Cbor => 0x10,
            Command::Cancel => 0x11,
            Command::Keepalive => 0x3b,
            Command::Error => 0x3f,
            Command::Other(b) => b,
        }
    }

    fn check(self) -> Result<u8, HidError> {
        let b = self.to_u8();
        if b > 0x7f {
            Err(HidError::InvalidCommand { cmd: b })
        } else {
            Ok(b)
        }
    }
}

/// The error code carried by a CTAPHID_ERROR message. Unknown codes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HidErrorCode {
    /// ERR_INVALID_CMD (0x01): the command is not supported.
    InvalidCmd,
    /// ERR_INVALID_PAR (0x02): a parameter is invalid.
    InvalidPar,
    /// ERR_INVALID_LEN (0x03): the declared length is invalid.
    InvalidLen,
    /// ERR_INVALID_SEQ (0x04): a continuation came out of sequence.
    InvalidSeq,
    /// ERR_MSG_TIMEOUT (0x05): the message was not completed in time.
    MsgTimeout,
    /// ERR_CHANNEL_BUSY (0x06): another channel has a transaction; retry later.
    ChannelBusy,
    /// ERR_LOCK_REQUIRED (0x0A): the command needs a channel lock.
    LockRequired,
    /// ERR_INVALID_CHANNEL (0x0B): the channel is not allocated or not allowed.
    InvalidChannel,
    /// ERR_OTHER (0x7F) or any other code, kept as sent.
    Other(u8),
}

impl HidErrorCode {
    /// Reads an error code byte.
    pub fn from_u8(byte: u8) -> Self {
        match byte {
            0x01 => HidErrorCode::InvalidCmd,
            0x02 => HidErrorCode::InvalidPar,
            0x03 => HidErrorCode::InvalidLen,
            0x04 => HidErrorCode::InvalidSeq,
            0x05 => HidErrorCode::MsgTimeout,
            0x06 => HidErrorCode::ChannelBusy,
            0x0a => HidErrorCode::LockRequired,
            0x0b => HidErrorCode::InvalidChannel,
            other => HidErrorCode::Other(other),
        }
    }

    /// The error code byte.
    pub fn to_u8(self) -> u8 {
        match self {
            HidErrorCode::InvalidCmd => 0x01,
            HidErrorCode::InvalidPar => 0x02,
            HidErrorCode::InvalidLen => 0x03,
            HidErrorCode::InvalidSeq => 0x04,
            HidErrorCode::MsgTimeout => 0x05,
            HidErrorCode::ChannelBusy => 0x06,
            HidErrorCode::LockRequired => 0x0a,
            HidErrorCode::InvalidChannel => 0x0b,
            HidErrorCode::Other(b) => b,
        }
    }

    /// Whether the same request may simply be sent again later (the key was busy).
    pub fn is_retryable(self) -> bool {
        self == HidErrorCode::ChannelBusy
    }
}

impl std::fmt::Display for HidErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            HidErrorCode::InvalidCmd => "invalid command",
            HidErrorCode::InvalidPar => "invalid parameter",
            HidErrorCode::InvalidLen => "invalid length",
            HidErrorCode::InvalidSeq => "invalid sequence",
            HidErrorCode::MsgTimeout => "message timeout",
            HidErrorCode::ChannelBusy => "channel busy",
            HidErrorCode::LockRequired => "lock required",
            HidErrorCode::InvalidChannel => "invalid channel",
            HidErrorCode::Other(_) => "other error",
        };
        write!(f, "{text} (0x{:02x})", self.to_u8())
    }
}

/// Status carried by a CTAPHID_KEEPALIVE message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeepaliveStatus {
    /// STATUS_PROCESSING (1): the key is working.
    Processing,
    /// STATUS_UPNEEDED (2): the key waits for user presence ("touch your key").
    UpNeeded,
    /// Any other status byte, kept as sent.
    Other(u8),
}

impl KeepaliveStatus {
    /// Reads a status byte.
    pub fn from_u8(byte: u8) -> Self {
        match byte {
            1 => KeepaliveStatus::Processing,
            2 => KeepaliveStatus::UpNeeded,
            other => KeepaliveStatus::Other(other),
        }
    }

    /// The status byte.
    pub fn to_u8(self) -> u8 {
        match self {
            KeepaliveStatus::Processing => 1,
            KeepaliveStatus::UpNeeded => 2,
            KeepaliveStatus::Other(b) => b,
        }
    }
}

/// Capability flags from the CTAPHID_INIT response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u8);

impl Capabilities {
    /// CAPABILITY_WINK: the key implements CTAPHID_WINK.
    pub const WINK: Capabilities = Capabilities(0x01);
    /// CAPABILITY_CBOR: the key implements CTAPHID_CBOR (CTAP2).
    pub const CBOR: Capabilities = Capabilities(0x04);
    /// CAPABILITY_NMSG: the key does **not** implement CTAPHID_MSG (no CTAP1/U2F).
    pub const NMSG: Capabilities = Capabilities(0x08);

    /// The raw flag byte (unknown bits kept).
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Flags from a raw byte (unknown bits kept).
    pub fn from_bits(bits: u8) -> Self {
        Capabilities(bits)
    }

    /// Whether every flag in `other` is set.
    pub fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Capabilities {
    type Output = Capabilities;
    fn bitor(self, rhs: Capabilities) -> Capabilities {
        Capabilities(self.0 | rhs.0)
    }
}

/// A parsed CTAPHID_INIT response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InitResponse {
    /// The nonce echoed by the key.
    pub nonce: [u8; NONCE_LEN],
    /// The channel the key allocated.
    pub cid: Cid,
    /// CTAPHID protocol version (2 today).
    pub protocol_version: u8,
    /// Device version, major number (vendor defined).
    pub version_major: u8,
    /// Device version, minor number (vendor defined).
    pub version_minor: u8,
    /// Device version, build number (vendor defined).
    pub version_build: u8,
    /// Capability flags.
    pub capabilities: Capabilities,
}

impl InitResponse {
    /// Parses an INIT response payload (17 bytes; extra bytes are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, HidError> {
        let Some(bytes) = payload.get(..INIT_RESPONSE_LEN) else {
            return Err(HidError::InvalidInitResponse {
                reason: "INIT response shorter than 17 bytes",
            });
        };
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let cid = Cid::from_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if !cid.is_allocatable() {
            return Err(HidError::InvalidInitResponse {
                reason: "INIT response allocated the reserved or broadcast channel",
            });
        }
        Ok(InitResponse {
            nonce,
            cid,
            protocol_version: bytes[12],
            version_major: bytes[13],
            version_minor: bytes[14],
            version_build: bytes[15],
            capabilities: Capabilities(bytes[16]),
        })
    }

    /// The 17-byte payload of this response.
    pub fn to_bytes(&self) -> [u8; INIT_RESPONSE_LEN] {
        let mut out = [0u8; INIT_RESPONSE_LEN];
        out[..NONCE_LEN].copy_from_slice(&self.nonce);
        out[8..12].copy_from_slice(&self.cid.to_bytes());
        out[12] = self.protocol_version;
        out[13] = self.version_major;
        out[14] = self.version_minor;
        out[15] = self.version_build;
        out[16] = self.capabilities.bits();
        out
    }
}

/// Errors of the CTAPHID state machines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HidError {
    /// A report was not exactly 64 bytes (a leading OS report id must be stripped by the
    /// transport).
    #[error("CTAPHID report must be exactly 64 bytes, got {len}")]
    ReportLength {
        /// Length of the rejected report.
        len: usize,
    },
    /// A message (to send, or declared by BCNT) exceeds 7609 bytes.
    #[error("CTAPHID message of {len} bytes exceeds the maximum of 7609")]
    MessageTooLarge {
        /// The offending length.
        len: usize,
    },
    /// A command value above 0x7F cannot be sent.
    #[error("CTAPHID command 0x{cmd:02x} does not fit in seven bits")]
    InvalidCommand {
        /// The rejected command value.
        cmd: u8,
    },
    /// A continuation report came with the wrong sequence number.
    #[error("CTAPHID continuation out of sequence: expected {expected}, got {got}")]
    UnexpectedSeq {
        /// The sequence number that was due.
        expected: u8,
        /// The sequence number received.
        got: u8,
    },
    /// A continuation report arrived when no message was being reassembled.
    #[error("CTAPHID continuation (seq {seq}) without an initialization report")]
    UnexpectedContinuation {
        /// Its sequence number.
        seq: u8,
    },
    /// An initialization report arrived while a message was still being reassembled.
    #[error("CTAPHID initialization report (command 0x{cmd:02x}) in the middle of a message")]
    UnexpectedInit {
        /// Its command value.
        cmd: u8,
    },
    /// The response carried a different command than the request.
    #[error("CTAPHID response command 0x{got:02x} does not answer request 0x{expected:02x}")]
    UnexpectedCommand {
        /// The command that was sent.
        expected: u8,
        /// The command that came back.
        got: u8,
    },
    /// A message's declared length does not fit what the message must contain.
    #[error("CTAPHID {field}: length {len} is invalid ({reason})")]
    LengthMismatch {
        /// Which message.
        field: &'static str,
        /// The declared length.
        len: usize,
        /// What was expected.
        reason: &'static str,
    },
    /// Nothing (not even a keepalive) arrived before the deadline.
    #[error("CTAPHID transaction timed out")]
    Timeout,
    /// The key answered with CTAPHID_ERROR.
    #[error("authenticator reported CTAPHID error: {0}")]
    DeviceError(HidErrorCode),
    /// The key is busy with another channel's transaction; the request may be retried.
    #[error("authenticator is busy with another channel; retry later")]
    ChannelBusy,
    /// An INIT response echoed a nonce other than the one sent.
    #[error("CTAPHID_INIT response nonce does not match the request")]
    NonceMismatch,
    /// An INIT response is malformed.
    #[error("malformed CTAPHID_INIT response: {reason}")]
    InvalidInitResponse {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A request was started while another is still in progress.
    #[error("a CTAPHID transaction is already in progress")]
    TransactionInProgress,
    /// The operation needs a transaction but none is in progress.
    #[error("no CTAPHID transaction is in progress")]
    NoTransaction,
    /// A request was started before a channel was allocated with CTAPHID_INIT.
    #[error("no CTAPHID channel allocated; send CTAPHID_INIT first")]
    NoChannel,
    /// The channel is not allocated, or not the one with a request in progress.
    #[error("CTAPHID channel 0x{cid:08x} is not valid here")]
    InvalidChannel {
        /// The channel id.
        cid: u32,
    },
}

impl From<HidErrorCode> for HidError {
    fn from(code: HidErrorCode) -> Self {
        match code {
            HidErrorCode::ChannelBusy => HidError::ChannelBusy,
            other => HidError::DeviceError(other),
        }
    }
}

impl HidError {
    /// Whether the same request may be sent again later (the key was busy).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            HidError::ChannelBusy | HidError::DeviceError(HidErrorCode::ChannelBusy)
        )
    }
}

/// One parsed 64-byte report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// An initialization report.
    Init {
        /// Channel.
        cid: Cid,
        /// Command.
        cmd: Command,
        /// Declared message length.
        bcnt: u16,
        /// The 57 data bytes (padding included).
        data: &'a [u8],
    },
    /// A continuation report.
    Cont {
        /// Channel.
        cid: Cid,
        /// Sequence number (0..=127).
        seq: u8,
        /// The 59 data bytes (padding included).
        data: &'a [u8],
    },
}

impl<'a> Packet<'a> {
    /// Parses a report; it must be exactly 64 bytes.
    pub fn parse(report: &'a [u8]) -> Result<Self, HidError> {
        let report: &'a [u8; REPORT_LEN] = report
            .try_into()
            .map_err(|_| HidError::ReportLength { len: report.len() })?;
        let cid = Cid::from_bytes([report[0], report[1], report[2], report[3]]);
        let kind = report[4];
        if kind & 0x80 != 0 {
            Ok(Packet::Init {
                cid,
                cmd: Command::from_u8(kind),
                bcnt: u16::from_be_bytes([report[5], report[6]]),
                data: &report[7..],
            })
        } else {
            Ok(Packet::Cont {
                cid,
                seq: kind,
                data: &report[5..],
            })
        }
    }

    /// The channel of the report.
    pub fn cid(&self) -> Cid {
        match self {
            Packet::Init { cid, .. } | Packet::Cont { cid, .. } => *cid,
        }
    }
}

/// Splits a message into 64-byte reports (zero padded). An empty payload gives one
/// initialization report with BCNT 0.
pub fn fragment(cid: Cid, cmd: Command, payload: &[u8]) -> Result<Vec<[u8; REPORT_LEN]>, HidError> {
    let cmd = cmd.check()?;
    if payload.len() > MAX_MESSAGE_LEN {
        return Err(HidError::MessageTooLarge { len: payload.len() });
    }
    // Fits in u16: MAX_MESSAGE_LEN < 65536.
    let bcnt = payload.len() as u16;
    let first_len = payload.len().min(INIT_DATA_LEN);
    let (first, rest) = payload.split_at(first_len);
    let mut reports = Vec::with_capacity(1 + rest.len().div_ceil(CONT_DATA_LEN));
    let mut init = [0u8; REPORT_LEN];
    init[..4].copy_from_slice(&cid.to_bytes());
    init[4] = cmd | 0x80;
    init[5..7].copy_from_slice(&bcnt.to_be_bytes());
    init[7..7 + first.len()].copy_from_slice(first);
    reports.push(init);
    for (seq, chunk) in rest.chunks(CONT_DATA_LEN).enumerate() {
        let mut cont = [0u8; REPORT_LEN];
        cont[..4].copy_from_slice(&cid.to_bytes());
        // At most 128 chunks because the payload is bounded above.
        cont[4] = seq as u8;
        cont[5..5 + chunk.len()].copy_from_slice(chunk);
        reports.push(cont);
    }
    Ok(reports)
}

/// One message being put back together from its reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reassembly {
    pub(crate) cid: Cid,
    pub(crate) cmd: Command,
    expected: usize,
    buf: Vec<u8>,
    next_seq: u8,
}

impl Reassembly {
    /// Starts from an initialization report. Rejects a BCNT above the maximum.
    pub(crate) fn start(cid: Cid, cmd: Command, bcnt: u16, data: &[u8]) -> Result<Self, HidError> {
        let expected = usize::from(bcnt);
        if expected > MAX_MESSAGE_LEN {
            return Err(HidError::MessageTooLarge { len: expected });
        }
        let mut buf = Vec::with_capacity(expected);
        let take = expected.min(data.len());
        buf.extend_from_slice(data.get(..take).unwrap_or_default());
        Ok(Reassembly {
            cid,
            cmd,
            expected,
            buf,
            next_seq: 0,
        })
    }

    /// Adds a continuation report; the caller has already matched the channel.
    pub(crate) fn push(&mut self, seq: u8, data: &[u8]) -> Result<(), HidError> {
        if self.is_complete() || seq != self.next_seq {
            return Err(HidError::UnexpectedSeq {
                expected: self.next_seq,
                got: seq,
            });
        }
        let take = (self.expected - self.buf.len()).min(data.len());
        self.buf
            .extend_from_slice(data.get(..take).unwrap_or_default());
        self.next_seq = self.next_seq.wrapping_add(1);
        Ok(())
    }

    pub(crate) fn is_complete(&self) -> bool {
        self.buf.len() >= self.expected
    }

    pub(crate) fn received(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn expected(&self) -> usize {
        self.expected
    }

    pub(crate) fn into_payload(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_message_len_is_7609() {
        assert_eq!(MAX_MESSAGE_LEN, 7609);
    }

    #[test]
    fn command_bytes_round_trip() {
        for b in 0..=0x7fu8 {
            assert_eq!(Command::from_u8(b).to_u8(), b);
            assert_eq!(Command::from_u8(b | 0x80).to_u8(), b);
        }
        assert_eq!(Command::from_u8(0x90), Command::Cbor);
        assert_eq!(Command::from_u8(0xbb), Command::Keepalive);
    }

    #[test]
    fn error_codes_round_trip_and_keep_unknown() {
        for b in 0..=0xffu8 {
            assert_eq!(HidErrorCode::from_u8(b).to_u8(), b);
        }
        assert_eq!(HidErrorCode::from_u8(0x7f), HidErrorCode::Other(0x7f));
        assert!(HidErrorCode::ChannelBusy.is_retryable());
        assert!(!HidErrorCode::InvalidSeq.is_retryable());
        assert_eq!(
            HidError::from(HidErrorCode::ChannelBusy),
            HidError::ChannelBusy
        );
        assert!(HidError::from(HidErrorCode::ChannelBusy).is_retryable());
    }

    #[test]
    fn fragment_sizes() {
        let cid = Cid(0x0102_0304);
        assert_eq!(fragment(cid, Command::Cbor, &[]).unwrap().len(), 1);
        assert_eq!(fragment(cid, Command::Cbor, &[0; 57]).unwrap().len(), 1);
        assert_eq!(fragment(cid, Command::Cbor, &[0; 58]).unwrap().len(), 2);
        let max = fragment(cid, Command::Cbor, &[7; MAX_MESSAGE_LEN]).unwrap();
        assert_eq!(max.len(), 129);
        assert_eq!(max[128][4], 127);
        assert_eq!(max[128][63], 7);
        assert_eq!(
            fragment(cid, Command::Cbor, &[0; MAX_MESSAGE_LEN + 1]),
            Err(HidError::MessageTooLarge { len: 7610 })
        );
        assert_eq!(
            fragment(cid, Command::Other(0x80), &[]),
            Err(HidError::InvalidCommand { cmd: 0x80 })
        );
    }

    #[test]
    fn fragment_layout() {
        let payload: Vec<u8> = (0..100u8).collect();
        let r = fragment(Cid(0xaabb_ccdd), Command::Ping, &payload).unwrap();
        assert_eq!(&r[0][..7], &[0xaa, 0xbb, 0xcc, 0xdd, 0x81, 0x00, 100]);
        assert_eq!(&r[0][7..], &payload[..57]);
        assert_eq!(&r[1][..5], &[0xaa, 0xbb, 0xcc, 0xdd, 0x00]);
        assert_eq!(&r[1][5..5 + 43], &payload[57..]);
        assert!(r[1][5 + 43..].iter().all(|&b| b == 0));
    }

    #[test]
    fn packet_parse_rejects_other_lengths() {
        for len in [0usize, 4, 7, 63, 65] {
            assert_eq!(
                Packet::parse(&vec![0u8; len]),
                Err(HidError::ReportLength { len })
            );
        }
    }

    #[test]
    fn reassembly_rejects_oversize_and_bad_seq() {
        assert_eq!(
            Reassembly::start(Cid(1), Command::Cbor, 7610, &[0; 57]),
            Err(HidError::MessageTooLarge { len: 7610 })
        );
        let mut r = Reassembly::start(Cid(1), Command::Cbor, 100, &[1; 57]).unwrap();
        assert_eq!(
            r.push(1, &[0; 59]),
            Err(HidError::UnexpectedSeq {
                expected: 0,
                got: 1
            })
        );
        r.push(0, &[2; 59]).unwrap();
        assert!(r.is_complete());
        assert_eq!(r.received(), 100);
        assert_eq!(
            r.push(1, &[0; 59]),
            Err(HidError::UnexpectedSeq {
                expected: 1,
                got: 1
            })
        );
    }

    #[test]
    fn init_response_parse() {
        let mut bytes = [0u8; 17];
        bytes[..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        bytes[8..12].copy_from_slice(&[0, 0x22, 0, 2]);
        bytes[12..].copy_from_slice(&[2, 5, 2, 1, 5]);
        let r = InitResponse::parse(&bytes).unwrap();
        assert_eq!(r.cid, Cid(0x0022_0002));
        assert!(r
            .capabilities
            .contains(Capabilities::WINK | Capabilities::CBOR));
        assert!(!r.capabilities.contains(Capabilities::NMSG));
        assert_eq!(r.to_bytes(), bytes);
        assert!(matches!(
            InitResponse::parse(&bytes[..16]),
            Err(HidError::InvalidInitResponse { .. })
        ));
        bytes[8..12].copy_from_slice(&[0xff; 4]);
        assert!(matches!(
            InitResponse::parse(&bytes),
            Err(HidError::InvalidInitResponse { .. })
        ));
    }
}
