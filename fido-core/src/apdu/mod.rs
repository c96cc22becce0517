//! ISO 7816-4 / NFCCTAP APDU framing as pure functions and state machines.
//!
//! Over NFC (and contact smart-card readers driven through PC/SC) a CTAP message travels
//! inside ISO 7816-4 command APDUs and comes back in response APDUs (CTAP 2.1 §11.3).
//! This module is sans-IO: bytes in, bytes and events out.
//!
//! - [`CommandApdu`], [`ResponseApdu`] and [`StatusWord`]: the wire types, with encoders
//!   for short and extended length and strict parsers for all four ISO cases.
//! - [`NfcCtapExchange`]: the host side of one SELECT or one CTAP message, including
//!   command chaining, `61xx` GET RESPONSE, `9100` status updates, polling and cancel.
//! - [`VirtualCard`]: the card side, so a software authenticator can be exposed as a
//!   (virtual) smart card, with "personalities" that mimic awkward readers and cards.
//!
//! # Cancel
//! CTAP 2.1 §11.3 has no separate cancel instruction. A client that announced
//! NFCCTAP_GETRESPONSE support (P1 = 0x80 on NFCCTAP_MSG) and received `9100` cancels
//! by sending NFCCTAP_GETRESPONSE with P1 = 0x11 (`80 11 11 00`) instead of a plain
//! poll; the authenticator then answers with CTAP2_ERR_KEEPALIVE_CANCEL (0x2D). Before
//! the first `9100` there is nothing to cancel at the APDU level: the request is only
//! marked, and the cancel goes out in place of the next poll.
//!
//! # Example
//! ```
//! use fido_core::apdu::{CardConfig, HostConfig, NfcCtapExchange, ApduMode, HostEvent,
//!     CardOutput, VirtualCard};
//!
//! let mut card = VirtualCard::new(CardConfig::short_only());
//! let mut host = NfcCtapExchange::select(&HostConfig::new(ApduMode::Short));
//! while let Some(cmd) = host.poll_transmit() {
//!     let CardOutput::Response(rsp) = card.handle_apdu(&cmd) else { unreachable!() };
//!     host.handle_response(&rsp).unwrap();
//! }
//! assert!(matches!(host.poll_event(), Some(HostEvent::Selected(_))));
//! ```
mod card;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod host;

use core::fmt;

pub use card::{CardConfig, CardOutput, VirtualCard};
pub use host::{ApduMode, AppletVersion, HostConfig, HostEvent, NfcCtapExchange, ProcessingStatus};

/// The FIDO applet identifier (CTAP 2.1 §11.3.3).
pub const FIDO_AID: [u8; 8] = [0xA0, 0x00, 0x00, 0x06, 0x47, 0x2F, 0x00, 0x01];
/// CLA of the NFCCTAP instructions.
pub const CLA_NFCCTAP: u8 = 0x80;
/// CLA bit announcing that more blocks of a chained command follow (ISO 7816-4 §5.1.1).
pub const CLA_CHAINING: u8 = 0x10;
/// INS of SELECT.
pub const INS_SELECT: u8 = 0xA4;
/// INS of GET RESPONSE (ISO 7816-4).
pub const INS_GET_RESPONSE: u8 = 0xC0;
/// INS of NFCCTAP_MSG: carries one CTAP message.
pub const INS_NFCCTAP_MSG: u8 = 0x10;
/// INS of NFCCTAP_GETRESPONSE: polls after a `9100` status update.
pub const INS_NFCCTAP_GETRESPONSE: u8 = 0x11;
/// P1 of NFCCTAP_MSG announcing that the client supports NFCCTAP_GETRESPONSE.
pub const P1_GETRESPONSE_SUPPORTED: u8 = 0x80;
/// P1 of NFCCTAP_GETRESPONSE asking the authenticator to cancel.
pub const P1_CANCEL: u8 = 0x11;
/// Largest command data field in a short APDU.
pub const MAX_SHORT_DATA: usize = 255;
/// Largest command data field in an extended APDU.
pub const MAX_EXTENDED_DATA: usize = 65_535;
/// Largest Le (Ne) in a short APDU (encoded as `00`).
pub const MAX_SHORT_LE: u32 = 256;
/// Largest Le (Ne) in an extended APDU (encoded as `00 00`).
pub const MAX_EXTENDED_LE: u32 = 65_536;

/// Errors of this module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApduError {
    /// The bytes end before a field that must be there.
    #[error("truncated APDU: {field} needs {needed} bytes, only {got} present")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The length fields of a command APDU do not match its size.
    #[error("malformed command APDU: {field}: {reason}")]
    Malformed {
        /// The field at fault (e.g. `"Lc"`).
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The data field does not fit the chosen length form.
    #[error("data field of {len} bytes does not fit a {form} APDU (at most {max} bytes)")]
    DataTooLong {
        /// Length of the data field.
        len: usize,
        /// Largest data field of the form.
        max: usize,
        /// `"short"` or `"extended"`.
        form: &'static str,
    },
    /// Le is 0 or larger than the chosen length form allows.
    #[error("Le {le} is out of range for a {form} APDU (1..={max})")]
    LeOutOfRange {
        /// The requested Le (number of expected bytes).
        le: u32,
        /// Largest Le of the form.
        max: u32,
        /// `"short"` or `"extended"`.
        form: &'static str,
    },
    /// A CTAP message is too large for the chosen mode.
    #[error("a CTAP message of {len} bytes cannot be sent in {mode} mode: {reason}")]
    MessageTooLarge {
        /// Message size in bytes.
        len: usize,
        /// The mode asked for.
        mode: ApduMode,
        /// Why it does not fit.
        reason: &'static str,
    },
    /// The card answered with a status word the exchange cannot continue with.
    #[error("card answered {sw} to {during}")]
    Status {
        /// The status word as sent.
        sw: StatusWord,
        /// The step of the exchange (e.g. `"SELECT"`, `"chained NFCCTAP_MSG block"`).
        during: &'static str,
    },
    /// The card returned more response data than the configured limit.
    #[error("response exceeds the limit of {limit} bytes")]
    ResponseTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The card kept asking for more rounds than the configured limit.
    #[error("card still answering {kind} after {limit} rounds; giving up")]
    TooManyRounds {
        /// `"61xx GET RESPONSE"` or `"9100 status update"`.
        kind: &'static str,
        /// The configured limit.
        limit: usize,
    },
    /// A response arrived while the exchange was not waiting for one (or already ended).
    #[error("unexpected response: the exchange is {state}")]
    UnexpectedResponse {
        /// What the exchange is doing.
        state: &'static str,
    },
}

impl ApduError {
    /// Whether the card refused an extended APDU in a way that suggests retrying the
    /// message in [`ApduMode::Short`] (`6700` wrong length in answer to NFCCTAP_MSG).
    /// Readers that cannot carry extended APDUs at all usually fail in the PC/SC layer
    /// instead; the transport has to recognise that itself.
    pub fn suggests_short_mode(&self) -> bool {
        matches!(
            self,
            ApduError::Status {
                sw: StatusWord::WrongLength,
                during: "NFCCTAP_MSG"
            }
        )
    }
}

macro_rules! status_words {
    ($( $(#[$doc:meta])* $name:ident = $value:literal => $text:literal, )*) => {
        /// An ISO 7816-4 status word (SW1 SW2), kept losslessly.
        ///
        /// Words with a parameter byte (`61xx`, `6Cxx`) carry it; anything without a name is
        /// kept in [`StatusWord::Other`]. `from_u16(w).to_u16() == w` for every `w`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum StatusWord {
            $( $(#[$doc])* $name, )*
            /// `61xx`: more response data; fetch up to `xx` bytes (00 = 256) with GET RESPONSE.
            MoreData(u8),
            /// `6Cxx`: wrong Le; resend the command with Le = `xx` (00 = 256).
            WrongLe(u8),
            /// Any other status word, kept as sent.
            Other(u16),
        }

        impl StatusWord {
            /// The status word for a 16-bit value; never fails, never loses bits.
            pub const fn from_u16(value: u16) -> Self {
                match value {
                    $( $value => Self::$name, )*
                    v if v >> 8 == 0x61 => Self::MoreData((v & 0xFF) as u8),
                    v if v >> 8 == 0x6C => Self::WrongLe((v & 0xFF) as u8),
                    v => Self::Other(v),
                }
            }

            /// The 16-bit value on the wire.
            pub const fn to_u16(self) -> u16 {
                match self {
                    $( Self::$name => $value, )*
                    Self::MoreData(x) => 0x6100 | x as u16,
                    Self::WrongLe(x) => 0x6C00 | x as u16,
                    Self::Other(v) => v,
                }
            }

            /// What the word means, for people.
            pub const fn description(self) -> &'static str {
                match self {
                    $( Self::$name => $text, )*
                    Self::MoreData(_) => "more response data available (GET RESPONSE)",
                    Self::WrongLe(_) => "wrong Le; the card says how many bytes to ask for",
                    Self::Other(_) => "unrecognised status word",
                }
            }
        }
    };
}

status_words! {
    /// `9000`: success.
    Success = 0x9000 => "success",
    /// `9100`: NFCCTAP status update: the authenticator is still working (poll with
    /// NFCCTAP_GETRESPONSE); the data may carry a status byte.
    StatusUpdate = 0x9100 => "still processing (NFCCTAP status update)",
    /// `6700`: wrong length (also what short-only cards answer to extended APDUs).
    WrongLength = 0x6700 => "wrong length (the card or reader may not support extended APDUs)",
    /// `6982`: security status not satisfied.
    SecurityStatusNotSatisfied = 0x6982 => "security status not satisfied",
    /// `6985`: conditions of use not satisfied.
    ConditionsNotSatisfied = 0x6985 => "conditions of use not satisfied",
    /// `6A80`: incorrect parameters in the data field.
    WrongData = 0x6A80 => "incorrect parameters in the data field",
    /// `6A82`: file or application not found (no FIDO applet).
    FileNotFound = 0x6A82 => "file or application not found (no FIDO applet on this card)",
    /// `6A86`: incorrect P1 or P2.
    IncorrectP1P2 = 0x6A86 => "incorrect parameters P1-P2",
    /// `6D00`: instruction not supported.
    InsNotSupported = 0x6D00 => "instruction not supported",
    /// `6E00`: class not supported.
    ClaNotSupported = 0x6E00 => "class not supported",
    /// `6F00`: no precise diagnosis.
    NoPreciseDiagnosis = 0x6F00 => "no precise diagnosis (internal card error)",
}

impl StatusWord {
    /// The word from SW1 and SW2.
    pub const fn from_bytes(sw1: u8, sw2: u8) -> Self {
        Self::from_u16(((sw1 as u16) << 8) | sw2 as u16)
    }

    /// SW1 and SW2.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }

    /// Whether this is `9000`.
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Success)
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SW {:04X} ({})", self.to_u16(), self.description())
    }
}

/// The length encoding of a command APDU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LengthForm {
    /// Lc and Le one byte each: data ≤ 255 bytes, Le ≤ 256.
    Short,
    /// Lc `00 hh ll`, Le two bytes (three when there is no data): data ≤ 65535, Le ≤ 65536.
    Extended,
}

impl LengthForm {
    const fn name(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::Extended => "extended",
        }
    }

    const fn max_data(self) -> usize {
        match self {
            Self::Short => MAX_SHORT_DATA,
            Self::Extended => MAX_EXTENDED_DATA,
        }
    }

    const fn max_le(self) -> u32 {
        match self {
            Self::Short => MAX_SHORT_LE,
            Self::Extended => MAX_EXTENDED_LE,
        }
    }
}

/// An ISO 7816-4 command APDU.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CommandApdu {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data field (Lc is its length).
    pub data: Vec<u8>,
    /// Expected response length Ne (1..=65536), `None` when no data is expected.
    pub le: Option<u32>,
}

impl CommandApdu {
    /// A command without data and without Le (ISO case 1).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
        }
    }

    /// The same command with a data field.
    #[must_use]
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self
    }

    /// The same command with an expected response length.
    #[must_use]
    pub fn with_le(mut self, le: u32) -> Self {
        self.le = Some(le);
        self
    }

    /// Whether the command fits the given length form.
    pub fn fits(&self, form: LengthForm) -> bool {
        self.check(form).is_ok()
    }

    fn check(&self, form: LengthForm) -> Result<(), ApduError> {
        if self.data.len() > form.max_data() {
            return Err(ApduError::DataTooLong {
                len: self.data.len(),
                max: form.max_data(),
                form: form.name(),
            });
        }
        if let Some(le) = self.le {
            if le == 0 || le > form.max_le() {
                return Err(ApduError::LeOutOfRange {
                    le,
                    max: form.max_le(),
                    form: form.name(),
                });
            }
        }
        Ok(())
    }

    /// Encodes the command in the given length form.
    ///
    /// # Errors
    /// [`ApduError::DataTooLong`] or [`ApduError::LeOutOfRange`] when it does not fit.
    pub fn encode(&self, form: LengthForm) -> Result<Vec<u8>, ApduError> {
        self.check(form)?;
        let mut out = Vec::with_capacity(4 + 3 + self.data.len() + 3);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        let len = self.data.len();
        match form {
            LengthForm::Short => {
                if len > 0 {
                    out.push(len as u8); // checked: len <= 255
                    out.extend_from_slice(&self.data);
                }
                if let Some(le) = self.le {
                    out.push((le & 0xFF) as u8); // 256 encodes as 00
                }
            }
            LengthForm::Extended => {
                if len > 0 {
                    out.push(0);
                    out.extend_from_slice(&(len as u16).to_be_bytes()); // checked: <= 65535
                    out.extend_from_slice(&self.data);
                }
                if let Some(le) = self.le {
                    if len == 0 {
                        out.push(0);
                    }
                    out.extend_from_slice(&((le & 0xFFFF) as u16).to_be_bytes());
                    // 65536 as 0000
                }
            }
        }
        Ok(out)
    }

    /// Encodes in short form when the command fits, otherwise extended.
    ///
    /// # Errors
    /// When it fits neither form.
    pub fn encode_auto(&self) -> Result<Vec<u8>, ApduError> {
        if self.fits(LengthForm::Short) {
            self.encode(LengthForm::Short)
        } else {
            self.encode(LengthForm::Extended)
        }
    }

    /// Parses a command APDU (ISO 7816-3 cases 1, 2S, 3S, 4S, 2E, 3E, 4E).
    ///
    /// # Errors
    /// [`ApduError::Truncated`] for fewer than 4 bytes, [`ApduError::Malformed`] when the
    /// length fields disagree with the size.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        Self::parse_with_form(bytes).map(|(apdu, _)| apdu)
    }

    /// Parses a command APDU and reports which length form it used (a case 1 command,
    /// having no length fields, reports [`LengthForm::Short`]).
    ///
    /// # Errors
    /// As [`CommandApdu::parse`].
    pub fn parse_with_form(bytes: &[u8]) -> Result<(Self, LengthForm), ApduError> {
        let (header, body) = split_header(bytes)?;
        let [cla, ins, p1, p2] = header;
        let mut apdu = Self::new(cla, ins, p1, p2);
        let Some((&first, rest)) = body.split_first() else {
            return Ok((apdu, LengthForm::Short)); // case 1
        };
        if first != 0 || rest.is_empty() {
            // Short form.
            if rest.is_empty() {
                apdu.le = Some(short_le(first)); // case 2S
                return Ok((apdu, LengthForm::Short));
            }
            let lc = usize::from(first);
            let (data, tail) = split_at_checked(rest, lc).ok_or(ApduError::Malformed {
                field: "Lc",
                reason: "short Lc is larger than the data that follows",
            })?;
            apdu.data = data.to_vec();
            match tail {
                [] => {}
                [le] => apdu.le = Some(short_le(*le)),
                _ => {
                    return Err(ApduError::Malformed {
                        field: "Le",
                        reason: "more than one byte after the short data field",
                    })
                }
            }
            return Ok((apdu, LengthForm::Short));
        }
        // Extended form: `00` then two bytes.
        let (len2, tail) = match rest {
            [a, b, tail @ ..] => ([*a, *b], tail),
            _ => {
                return Err(ApduError::Malformed {
                    field: "Lc",
                    reason: "extended length marker 00 not followed by two bytes",
                })
            }
        };
        let value = u16::from_be_bytes(len2);
        if tail.is_empty() {
            apdu.le = Some(extended_le(value)); // case 2E
            return Ok((apdu, LengthForm::Extended));
        }
        if value == 0 {
            return Err(ApduError::Malformed {
                field: "Lc",
                reason: "extended Lc of zero followed by data",
            });
        }
        let (data, le_bytes) =
            split_at_checked(tail, usize::from(value)).ok_or(ApduError::Malformed {
                field: "Lc",
                reason: "extended Lc is larger than the data that follows",
            })?;
        apdu.data = data.to_vec();
        match le_bytes {
            [] => {}
            [a, b] => apdu.le = Some(extended_le(u16::from_be_bytes([*a, *b]))),
            _ => {
                return Err(ApduError::Malformed {
                    field: "Le",
                    reason: "extended Le must be exactly two bytes after the data field",
                })
            }
        }
        Ok((apdu, LengthForm::Extended))
    }
}

fn split_header(bytes: &[u8]) -> Result<([u8; 4], &[u8]), ApduError> {
    match bytes {
        [cla, ins, p1, p2, rest @ ..] => Ok(([*cla, *ins, *p1, *p2], rest)),
        _ => Err(ApduError::Truncated {
            field: "command header (CLA INS P1 P2)",
            needed: 4,
            got: bytes.len(),
        }),
    }
}

fn split_at_checked(bytes: &[u8], at: usize) -> Option<(&[u8], &[u8])> {
    if at <= bytes.len() {
        Some(bytes.split_at(at))
    } else {
        None
    }
}

fn short_le(byte: u8) -> u32 {
    if byte == 0 {
        MAX_SHORT_LE
    } else {
        u32::from(byte)
    }
}

fn extended_le(value: u16) -> u32 {
    if value == 0 {
        MAX_EXTENDED_LE
    } else {
        u32::from(value)
    }
}

/// An ISO 7816-4 response APDU: data then SW1 SW2.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResponseApdu {
    /// Response data (may be empty).
    pub data: Vec<u8>,
    /// The status word.
    pub sw: StatusWord,
}

impl ResponseApdu {
    /// A response with data and a status word.
    pub fn new(data: impl Into<Vec<u8>>, sw: StatusWord) -> Self {
        Self {
            data: data.into(),
            sw,
        }
    }

    /// A response with only a status word.
    pub fn status(sw: StatusWord) -> Self {
        Self::new(Vec::new(), sw)
    }

    /// Parses a response APDU.
    ///
    /// # Errors
    /// [`ApduError::Truncated`] when there are fewer than two bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApduError> {
        match bytes {
            [data @ .., sw1, sw2] => Ok(Self::new(data, StatusWord::from_bytes(*sw1, *sw2))),
            _ => Err(ApduError::Truncated {
                field: "response status word (SW1 SW2)",
                needed: 2,
                got: bytes.len(),
            }),
        }
    }

    /// The bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }
}

#[cfg(test)]
mod tests;
