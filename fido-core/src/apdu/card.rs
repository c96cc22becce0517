//! Card side: a virtual FIDO smart card that turns command APDUs into CTAP requests for
//! an authenticator and its answers back into response APDUs.

use std::fmt;

use zeroize::Zeroize;

use super::host::{AppletVersion, ProcessingStatus, MAX_MESSAGE_LEN};
use super::{
    CommandApdu, LengthForm, ResponseApdu, StatusWord, CLA_CHAINING, CLA_NFCCTAP, FIDO_AID,
    INS_GET_RESPONSE, INS_NFCCTAP_GETRESPONSE, INS_NFCCTAP_MSG, INS_SELECT, MAX_SHORT_LE,
    P1_CANCEL, P1_GETRESPONSE_SUPPORTED,
};

/// `6884`: command chaining not supported (for instructions other than NFCCTAP_MSG).
const SW_CHAINING_NOT_SUPPORTED: StatusWord = StatusWord::Other(0x6884);
/// CTAP2_ERR_KEEPALIVE_CANCEL: the CTAP answer to a cancelled request.
const CTAP_KEEPALIVE_CANCEL: u8 = 0x2D;

/// How the virtual card behaves: its "personality".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardConfig {
    /// Accept extended-length APDUs; when false, they are answered `6700` like a
    /// short-only reader or card would.
    pub extended_length: bool,
    /// Answer SELECT with `61xx` and no data, so the host must GET RESPONSE the version.
    pub select_via_get_response: bool,
    /// Answer this many `9100` status updates before the real result, when the host
    /// announced NFCCTAP_GETRESPONSE support (P1 = 0x80).
    pub status_updates: usize,
    /// The status carried by those `9100` answers.
    pub status: ProcessingStatus,
    /// Send at most this many data bytes per response even when Le allows more (forces
    /// `61xx` GET RESPONSE rounds); `None` means Le decides.
    pub max_response_chunk: Option<usize>,
    /// The SELECT answer.
    pub version: AppletVersion,
    /// Largest reassembled CTAP message accepted (larger chains are answered `6700`).
    pub max_message_len: usize,
    /// A reader that carries extended APDUs only at first (cheap readers whose limit is
    /// about size, which a 1-byte getInfo passes): after this many extended APDUs every
    /// further one is answered `6700`. `None`: no such limit.
    pub extended_apdus_accepted: Option<usize>,
    /// A card that takes ISO GET RESPONSE only with this CLA (libfido2 #816: CTAP2 cards
    /// expecting `0x80`, the CTAP spec's examples) and answers `6E00` to the other,
    /// keeping the data for a retry. `None`: `0x00` and `0x80` both work.
    pub get_response_cla: Option<u8>,
}

impl CardConfig {
    /// A well-behaved card: extended APDUs, plain SELECT, no status updates.
    pub fn extended() -> Self {
        Self {
            extended_length: true,
            select_via_get_response: false,
            status_updates: 0,
            status: ProcessingStatus::Processing,
            max_response_chunk: None,
            version: AppletVersion::Fido2_0,
            max_message_len: MAX_MESSAGE_LEN,
            extended_apdus_accepted: None,
            get_response_cla: None,
        }
    }

    /// A short-APDU card that answers in 61xx chunks of at most 200 bytes and takes GET
    /// RESPONSE only with CLA `cla` (`6E00` to the other).
    pub fn get_response_only_with_cla(cla: u8) -> Self {
        Self {
            get_response_cla: Some(cla),
            max_response_chunk: Some(200),
            ..Self::short_only()
        }
    }

    /// A short-APDU-only reader/card: extended APDUs are answered `6700`.
    pub fn short_only() -> Self {
        Self {
            extended_length: false,
            ..Self::extended()
        }
    }

    /// A cheap reader: extended APDUs pass for the first `n`, then are answered `6700`
    /// (the first message of a connection, getInfo, goes through; a makeCredential
    /// later does not).
    pub fn extended_at_first(n: usize) -> Self {
        Self {
            extended_apdus_accepted: Some(n),
            ..Self::extended()
        }
    }

    /// The awkward one: SELECT answered with `61xx`, two `9100` "touch your key" updates
    /// before every result, responses in chunks of at most 200 bytes.
    pub fn quirky() -> Self {
        Self {
            select_via_get_response: true,
            status_updates: 2,
            status: ProcessingStatus::UserPresenceNeeded,
            max_response_chunk: Some(200),
            ..Self::extended()
        }
    }
}

impl Default for CardConfig {
    fn default() -> Self {
        Self::extended()
    }
}

/// What the card does with a command APDU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardOutput {
    /// Send these response APDU bytes back to the reader.
    Response(Vec<u8>),
    /// A complete CTAP message for the authenticator. Run it, then pass the answer to
    /// [`VirtualCard::ctap_response`] to get the response APDU.
    CtapRequest(Vec<u8>),
    /// The reader asked to cancel the request the authenticator is working on. Stop it
    /// and pass its answer (normally CTAP2_ERR_KEEPALIVE_CANCEL, `[0x2D]`) to
    /// [`VirtualCard::ctap_response`], which returns the response APDU to send.
    CancelRequested,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pending {
    Nothing,
    /// The authenticator is working on a request. Once a status update went out
    /// (`working`), the reader may poll; `cancel` records a cancel poll awaiting its
    /// answer.
    Authenticator {
        le: Option<u32>,
        get_response_supported: bool,
        working: Option<ProcessingStatus>,
        cancel: bool,
    },
    /// The result is ready but held back behind `9100` updates.
    Held {
        result: Vec<u8>,
        updates_left: usize,
    },
    /// The rest of a response, sent by GET RESPONSE.
    Outgoing(Vec<u8>),
}

/// A virtual FIDO smart card (card side of CTAP 2.1 §11.3).
///
/// Feed each command APDU to [`handle_apdu`](Self::handle_apdu). A complete CTAP
/// message comes out as [`CardOutput::CtapRequest`]; answer it with
/// [`ctap_response`](Self::ctap_response), or, while a slow authenticator waits for a
/// touch, first with [`status_update`](Self::status_update) (`9100`) and let the reader
/// poll. The [`CardConfig::status_updates`] personality instead inserts `9100` answers
/// after the result is known. Errors become status
/// words, never panics: malformed APDUs `6700`, unknown instructions `6D00`, wrong
/// class `6E00`, bad P1/P2 `6A86`, wrong AID `6A82`, anything before SELECT or out of
/// sequence `6985`.
///
/// Buffers are wiped on drop; `Debug` shows state and sizes only.
#[derive(Clone)]
pub struct VirtualCard {
    config: CardConfig,
    selected: bool,
    chain: Option<Vec<u8>>,
    pending: Pending,
}

impl VirtualCard {
    /// A card with the given personality, not yet selected.
    pub fn new(config: CardConfig) -> Self {
        Self {
            config,
            selected: false,
            chain: None,
            pending: Pending::Nothing,
        }
    }

    /// The card's personality.
    pub fn config(&self) -> &CardConfig {
        &self.config
    }

    /// Power cycle: forget the selection and anything in progress.
    pub fn reset(&mut self) {
        self.selected = false;
        self.drop_chain();
        self.clear_pending();
    }

    /// Whether the card waits for [`ctap_response`](Self::ctap_response).
    pub fn awaiting_authenticator(&self) -> bool {
        matches!(self.pending, Pending::Authenticator { .. })
    }

    fn drop_chain(&mut self) {
        if let Some(mut chain) = self.chain.take() {
            chain.zeroize();
        }
    }

    fn clear_pending(&mut self) {
        self.pending.wipe();
        self.pending = Pending::Nothing;
    }

    /// Handles one command APDU.
    pub fn handle_apdu(&mut self, bytes: &[u8]) -> CardOutput {
        let (cmd, form) = match CommandApdu::parse_with_form(bytes) {
            Ok(parsed) => parsed,
            Err(_) => return status(StatusWord::WrongLength),
        };
        if form == LengthForm::Extended {
            if !self.config.extended_length {
                return status(StatusWord::WrongLength);
            }
            if let Some(left) = self.config.extended_apdus_accepted.as_mut() {
                if *left == 0 {
                    return status(StatusWord::WrongLength);
                }
                *left -= 1;
            }
        }
        if let Pending::Authenticator { .. } = self.pending {
            return self.while_working(&cmd);
        }
        let chaining = cmd.cla & CLA_CHAINING != 0;
        let cla = cmd.cla & !CLA_CHAINING;
        // A new command ends a pending GET RESPONSE / status sequence and a chain of
        // another instruction (ISO 7816-4: the card discards it).
        if cmd.ins != INS_GET_RESPONSE && matches!(self.pending, Pending::Outgoing(_)) {
            self.clear_pending();
        }
        if cmd.ins != INS_NFCCTAP_GETRESPONSE && matches!(self.pending, Pending::Held { .. }) {
            self.clear_pending();
        }
        if cmd.ins != INS_NFCCTAP_MSG {
            self.drop_chain();
        }
        if chaining && cmd.ins != INS_NFCCTAP_MSG {
            return status(SW_CHAINING_NOT_SUPPORTED);
        }
        match cmd.ins {
            INS_SELECT => self.select(cla, &cmd),
            _ if !self.selected => status(StatusWord::ConditionsNotSatisfied),
            INS_GET_RESPONSE => self.get_response(cla, &cmd),
            INS_NFCCTAP_MSG => self.nfcctap_msg(cla, chaining, cmd),
            INS_NFCCTAP_GETRESPONSE => self.nfcctap_getresponse(cla, &cmd),
            _ => status(StatusWord::InsNotSupported),
        }
    }

    /// The authenticator's answer (CTAP status byte + CBOR) to the last
    /// [`CardOutput::CtapRequest`]; returns the response APDU to send, or `None` when no
    /// request is pending.
    ///
    /// After [`status_update`](Self::status_update) the reader is polling, so the result
    /// is kept for its next NFCCTAP_GETRESPONSE and this returns `None`, except in answer
    /// to [`CardOutput::CancelRequested`], where the answer goes out at once.
    pub fn ctap_response(&mut self, result: &[u8]) -> Option<Vec<u8>> {
        let Pending::Authenticator {
            le,
            get_response_supported,
            working,
            cancel,
        } = self.pending
        else {
            return None;
        };
        self.clear_pending();
        if cancel {
            return Some(self.respond_data(result.to_vec(), le));
        }
        if working.is_some() {
            self.pending = Pending::Held {
                result: result.to_vec(),
                updates_left: 0,
            };
            return None;
        }
        if get_response_supported && self.config.status_updates > 0 {
            self.pending = Pending::Held {
                result: result.to_vec(),
                updates_left: self.config.status_updates - 1,
            };
            return Some(self.status_update_apdu());
        }
        Some(self.respond_data(result.to_vec(), le))
    }

    /// While the authenticator works (after [`CardOutput::CtapRequest`]), tells the
    /// reader so: the first call returns the `9100` response APDU answering the
    /// NFCCTAP_MSG; later calls only change the status that polls are answered with and
    /// return `None`. Also `None` when nothing is pending or the reader did not announce
    /// NFCCTAP_GETRESPONSE support (then it must simply wait for the result).
    pub fn status_update(&mut self, status: ProcessingStatus) -> Option<Vec<u8>> {
        let Pending::Authenticator {
            get_response_supported: true,
            working,
            cancel: false,
            ..
        } = &mut self.pending
        else {
            return None;
        };
        let first = working.is_none();
        *working = Some(status);
        first.then(|| ResponseApdu::new(status.to_data(), StatusWord::StatusUpdate).encode())
    }

    /// A command while the authenticator works: only polls and a cancel make sense.
    fn while_working(&mut self, cmd: &CommandApdu) -> CardOutput {
        let Pending::Authenticator {
            le,
            working,
            cancel,
            ..
        } = &mut self.pending
        else {
            return status(StatusWord::ConditionsNotSatisfied);
        };
        // Before a status update the reader is waiting for our answer: half duplex, so
        // anything it sends now is out of sequence.
        let Some(current) = *working else {
            return status(StatusWord::ConditionsNotSatisfied);
        };
        if *cancel || cmd.ins != INS_NFCCTAP_GETRESPONSE {
            return status(StatusWord::ConditionsNotSatisfied);
        }
        if cmd.cla != CLA_NFCCTAP {
            return status(StatusWord::ClaNotSupported);
        }
        if (cmd.p1 != 0x00 && cmd.p1 != P1_CANCEL) || cmd.p2 != 0x00 {
            return status(StatusWord::IncorrectP1P2);
        }
        if cmd.p1 == P1_CANCEL {
            *cancel = true;
            *le = cmd.le;
            return CardOutput::CancelRequested;
        }
        CardOutput::Response(
            ResponseApdu::new(current.to_data(), StatusWord::StatusUpdate).encode(),
        )
    }

    fn status_update_apdu(&self) -> Vec<u8> {
        ResponseApdu::new(self.config.status.to_data(), StatusWord::StatusUpdate).encode()
    }

    fn select(&mut self, cla: u8, cmd: &CommandApdu) -> CardOutput {
        if cla != 0x00 {
            return status(StatusWord::ClaNotSupported);
        }
        if cmd.p1 != 0x04 || cmd.p2 != 0x00 {
            return status(StatusWord::IncorrectP1P2);
        }
        self.clear_pending();
        if cmd.data != FIDO_AID {
            self.selected = false;
            return status(StatusWord::FileNotFound);
        }
        self.selected = true;
        let version = self.config.version.as_bytes().to_vec();
        let le = if self.config.select_via_get_response {
            None // no data now: 61xx, the version comes with GET RESPONSE
        } else {
            cmd.le
        };
        CardOutput::Response(self.respond_data(version, le))
    }

    fn get_response(&mut self, cla: u8, cmd: &CommandApdu) -> CardOutput {
        if cla != 0x00 && cla != CLA_NFCCTAP {
            return status(StatusWord::ClaNotSupported);
        }
        if self.config.get_response_cla.is_some_and(|want| want != cla) {
            // The pending answer stays: a GET RESPONSE with the right CLA gets it.
            return status(StatusWord::ClaNotSupported);
        }
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return status(StatusWord::IncorrectP1P2);
        }
        let Pending::Outgoing(rest) = std::mem::replace(&mut self.pending, Pending::Nothing) else {
            return status(StatusWord::ConditionsNotSatisfied);
        };
        CardOutput::Response(self.respond_data(rest, Some(cmd.le.unwrap_or(MAX_SHORT_LE))))
    }

    fn nfcctap_msg(&mut self, cla: u8, chaining: bool, cmd: CommandApdu) -> CardOutput {
        if cla != CLA_NFCCTAP && cla != 0x00 {
            self.drop_chain();
            return status(StatusWord::ClaNotSupported);
        }
        if (cmd.p1 != 0x00 && cmd.p1 != P1_GETRESPONSE_SUPPORTED) || cmd.p2 != 0x00 {
            self.drop_chain();
            return status(StatusWord::IncorrectP1P2);
        }
        let mut message = self.chain.take().unwrap_or_default();
        if message.len().saturating_add(cmd.data.len()) > self.config.max_message_len {
            return status(StatusWord::WrongLength);
        }
        message.extend_from_slice(&cmd.data);
        if chaining {
            self.chain = Some(message);
            return status(StatusWord::Success);
        }
        self.pending = Pending::Authenticator {
            le: cmd.le,
            get_response_supported: cmd.p1 == P1_GETRESPONSE_SUPPORTED,
            working: None,
            cancel: false,
        };
        CardOutput::CtapRequest(message)
    }

    fn nfcctap_getresponse(&mut self, cla: u8, cmd: &CommandApdu) -> CardOutput {
        if cla != CLA_NFCCTAP {
            return status(StatusWord::ClaNotSupported);
        }
        if (cmd.p1 != 0x00 && cmd.p1 != P1_CANCEL) || cmd.p2 != 0x00 {
            return status(StatusWord::IncorrectP1P2);
        }
        let Pending::Held {
            result,
            updates_left,
        } = std::mem::replace(&mut self.pending, Pending::Nothing)
        else {
            return status(StatusWord::ConditionsNotSatisfied);
        };
        if cmd.p1 == P1_CANCEL {
            // The simulated authenticator already finished; a cancel replaces its
            // answer with KEEPALIVE_CANCEL as a real key would when cancelled in time.
            return CardOutput::Response(self.respond_data(vec![CTAP_KEEPALIVE_CANCEL], cmd.le));
        }
        if updates_left > 0 {
            self.pending = Pending::Held {
                result,
                updates_left: updates_left - 1,
            };
            return CardOutput::Response(self.status_update_apdu());
        }
        CardOutput::Response(self.respond_data(result, cmd.le))
    }

    /// Sends as much of `data` as Le (and the chunk quirk) allow; keeps the rest for
    /// GET RESPONSE and says so with `61xx`.
    fn respond_data(&mut self, mut data: Vec<u8>, le: Option<u32>) -> Vec<u8> {
        let mut ne = le.map_or(0, |n| n as usize);
        if let Some(chunk) = self.config.max_response_chunk {
            ne = ne.min(chunk.max(1));
        }
        if data.len() <= ne {
            return ResponseApdu::new(data, StatusWord::Success).encode();
        }
        let rest = data.split_off(ne);
        let xx = if rest.len() >= 256 {
            0
        } else {
            rest.len() as u8
        };
        self.pending = Pending::Outgoing(rest);
        ResponseApdu::new(data, StatusWord::MoreData(xx)).encode()
    }
}

impl Pending {
    fn name(&self) -> &'static str {
        match self {
            Pending::Nothing => "nothing",
            Pending::Authenticator { .. } => "authenticator working",
            Pending::Held { .. } => "result held behind 9100",
            Pending::Outgoing(_) => "response data for GET RESPONSE",
        }
    }

    fn wipe(&mut self) {
        match self {
            Pending::Held { result: b, .. } | Pending::Outgoing(b) => b.zeroize(),
            Pending::Nothing | Pending::Authenticator { .. } => {}
        }
    }
}

impl fmt::Debug for VirtualCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VirtualCard")
            .field("config", &self.config)
            .field("selected", &self.selected)
            .field("chain_len", &self.chain.as_ref().map(Vec::len))
            .field("pending", &self.pending.name())
            .finish()
    }
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        if let Some(chain) = &mut self.chain {
            chain.zeroize();
        }
        self.pending.wipe();
    }
}

fn status(sw: StatusWord) -> CardOutput {
    CardOutput::Response(ResponseApdu::status(sw).encode())
}
