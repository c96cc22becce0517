//! Host side: one SELECT or one CTAP message over APDUs, as a state machine.

use std::collections::VecDeque;
use std::fmt;

use zeroize::Zeroize;

use super::{
    ApduError, CommandApdu, LengthForm, ResponseApdu, StatusWord, CLA_CHAINING, CLA_NFCCTAP,
    FIDO_AID, INS_GET_RESPONSE, INS_NFCCTAP_GETRESPONSE, INS_NFCCTAP_MSG, INS_SELECT,
    MAX_EXTENDED_DATA, MAX_EXTENDED_LE, MAX_SHORT_DATA, MAX_SHORT_LE, P1_CANCEL,
    P1_GETRESPONSE_SUPPORTED,
};

/// Largest CTAP message this module sends or accepts in one NFCCTAP_MSG (the extended
/// Lc limit; short-mode chaining is held to the same bound so both modes agree).
pub const MAX_MESSAGE_LEN: usize = MAX_EXTENDED_DATA;

/// How a CTAP message is put into command APDUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApduMode {
    /// One extended APDU: `80 10 80 00 00 hh ll <message> 00 00`. Many readers do not
    /// support these.
    Extended,
    /// Short APDUs with command chaining (CLA | 0x10 on every block but the last),
    /// Le only on the last block, and GET RESPONSE for long answers.
    Short,
}

impl ApduMode {
    /// How many command APDUs a CTAP message of `len` bytes needs in this mode (the
    /// transmission itself; GET RESPONSE and polling rounds come on top).
    ///
    /// # Errors
    /// [`ApduError::MessageTooLarge`] when the message cannot be sent in this mode.
    pub fn apdu_count(self, len: usize) -> Result<usize, ApduError> {
        self.apdu_count_with_block(len, MAX_SHORT_DATA)
    }

    /// Whether a CTAP message of `len` bytes can be sent in this mode.
    pub fn fits(self, len: usize) -> bool {
        self.apdu_count(len).is_ok()
    }

    fn apdu_count_with_block(self, len: usize, block: usize) -> Result<usize, ApduError> {
        if len > MAX_MESSAGE_LEN {
            return Err(ApduError::MessageTooLarge {
                len,
                mode: self,
                reason: match self {
                    ApduMode::Extended => {
                        "an extended APDU carries at most 65535 bytes of data (Lc is 16 bits)"
                    }
                    ApduMode::Short => {
                        "chained short APDUs are limited to 65535 bytes per NFCCTAP message, \
                         the same bound as one extended APDU"
                    }
                },
            });
        }
        Ok(match self {
            ApduMode::Extended => 1,
            ApduMode::Short => len.div_ceil(block.clamp(1, MAX_SHORT_DATA)).max(1),
        })
    }

    fn form(self) -> LengthForm {
        match self {
            ApduMode::Extended => LengthForm::Extended,
            ApduMode::Short => LengthForm::Short,
        }
    }

    fn max_le(self) -> u32 {
        match self {
            ApduMode::Extended => MAX_EXTENDED_LE,
            ApduMode::Short => MAX_SHORT_LE,
        }
    }
}

impl fmt::Display for ApduMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApduMode::Extended => "extended",
            ApduMode::Short => "short",
        })
    }
}

/// Settings and limits of a host exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// How the message is framed.
    pub mode: ApduMode,
    /// Data bytes per chained short block (clamped to 1..=255; default 255).
    pub short_block_size: usize,
    /// Largest total response (all GET RESPONSE parts together) accepted.
    pub max_response_len: usize,
    /// Most `61xx` / `6Cxx` follow-up commands before giving up.
    pub max_get_response_rounds: usize,
    /// Most `9100` status updates before giving up (the caller paces the polls).
    pub max_status_updates: usize,
    /// Set P1 = 0x80 on NFCCTAP_MSG to tell the key we support NFCCTAP_GETRESPONSE.
    /// (A key that answers `9100` anyway is still polled.)
    pub announce_get_response: bool,
    /// The CLA of ISO GET RESPONSE (`xx C0 00 00 Le`) after `61xx` in a CTAP exchange:
    /// `0x00` (ISO, python-fido2; the default) or `0x80` (the CTAP2 spec's examples,
    /// libfido2). A card that answers `6E00` / `6D00` to one gets the other once, and
    /// [`NfcCtapExchange::get_response_cla`] reports the one that worked so a transport
    /// can keep it. SELECT always uses `0x00`.
    pub get_response_cla: u8,
}

impl HostConfig {
    /// Defaults for the given mode: 255-byte blocks, 64 KiB + 256 response limit,
    /// 1024 GET RESPONSE rounds, 1200 status updates (two minutes at 100 ms per poll),
    /// NFCCTAP_GETRESPONSE announced.
    pub fn new(mode: ApduMode) -> Self {
        Self {
            mode,
            short_block_size: MAX_SHORT_DATA,
            max_response_len: 65_536 + 256,
            max_get_response_rounds: 1024,
            max_status_updates: 1200,
            announce_get_response: true,
            get_response_cla: 0x00,
        }
    }

    /// How many command APDUs a CTAP message of `len` bytes needs with this config
    /// (its mode and block size).
    ///
    /// # Errors
    /// [`ApduError::MessageTooLarge`] when the message cannot be sent in this mode.
    pub fn apdu_count(&self, len: usize) -> Result<usize, ApduError> {
        self.mode
            .apdu_count_with_block(len, self.short_block_size.clamp(1, MAX_SHORT_DATA))
    }
}

/// The status byte an authenticator may put in a `9100` status update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProcessingStatus {
    /// `01`: still processing.
    Processing,
    /// `02`: waiting for user presence: tell the user "touch your key".
    UserPresenceNeeded,
    /// The update carried no status byte.
    Unspecified,
    /// Any other byte, kept as sent.
    Other(u8),
}

impl ProcessingStatus {
    /// The status from the data of a `9100` response (its first byte, if any).
    pub fn from_data(data: &[u8]) -> Self {
        match data.first() {
            None => Self::Unspecified,
            Some(1) => Self::Processing,
            Some(2) => Self::UserPresenceNeeded,
            Some(&b) => Self::Other(b),
        }
    }

    /// The data of a `9100` response carrying this status.
    pub fn to_data(self) -> Vec<u8> {
        match self {
            Self::Unspecified => Vec::new(),
            Self::Processing => vec![1],
            Self::UserPresenceNeeded => vec![2],
            Self::Other(b) => vec![b],
        }
    }
}

/// What the FIDO applet says about itself in answer to SELECT.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AppletVersion {
    /// `"U2F_V2"`: a CTAP1/U2F applet (it may still speak CTAP2; probe with getInfo).
    U2fV2,
    /// `"FIDO_2_0"`: a CTAP2-only applet.
    Fido2_0,
    /// Anything else, kept as sent (bounded by the response limit).
    Other(Vec<u8>),
}

impl AppletVersion {
    /// The version from SELECT response data.
    pub fn parse(data: &[u8]) -> Self {
        match data {
            b"U2F_V2" => Self::U2fV2,
            b"FIDO_2_0" => Self::Fido2_0,
            other => Self::Other(other.to_vec()),
        }
    }

    /// The SELECT response data for this version.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::U2fV2 => b"U2F_V2",
            Self::Fido2_0 => b"FIDO_2_0",
            Self::Other(v) => v,
        }
    }
}

/// Something the host exchange reports to its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostEvent {
    /// The key answered `9100`: it is still working. Wait a little (about 100 ms) before
    /// sending the next poll from [`NfcCtapExchange::poll_transmit`].
    StatusUpdate(ProcessingStatus),
    /// The CTAP response (status byte + CBOR) of the message; the exchange is done.
    Response(Vec<u8>),
    /// The FIDO applet was selected; the exchange is done.
    Selected(AppletVersion),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Select,
    Ctap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sent {
    /// A chained block that is not the last: expect a bare `9000`.
    ChainBlock,
    /// The last (or only) block of the command, or a resend after `6Cxx`.
    Final,
    /// ISO GET RESPONSE after `61xx`.
    GetResponse,
    /// NFCCTAP_GETRESPONSE after `9100`.
    Poll,
    /// NFCCTAP_GETRESPONSE with P1 = cancel.
    Cancel,
}

impl Sent {
    fn during(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Sent::ChainBlock, _) => "a chained NFCCTAP_MSG block",
            (Sent::Final, Kind::Select) => "SELECT of the FIDO applet",
            (Sent::Final, Kind::Ctap) => "NFCCTAP_MSG",
            (Sent::GetResponse, _) => "GET RESPONSE",
            (Sent::Poll, _) => "NFCCTAP_GETRESPONSE",
            (Sent::Cancel, _) => "NFCCTAP_GETRESPONSE (cancel)",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    Done,
    Failed,
}

/// The host side of one SELECT or one CTAP message over ISO 7816 APDUs.
///
/// Drive it like this: send every APDU from [`poll_transmit`](Self::poll_transmit) to the
/// card, hand each answer to [`handle_response`](Self::handle_response), and drain
/// [`poll_event`](Self::poll_event) after each answer. The exchange ends with
/// [`HostEvent::Response`] / [`HostEvent::Selected`], or with an error from
/// `handle_response` (after which it stays failed). Every loop the card could
/// cause is bounded by [`HostConfig`].
///
/// CTAP messages can carry PIN/UV material, so the buffers are wiped on drop and
/// `Debug` shows sizes and state only.
#[derive(Clone)]
pub struct NfcCtapExchange {
    kind: Kind,
    config: HostConfig,
    queue: VecDeque<(Vec<u8>, Sent)>,
    in_flight: Option<Sent>,
    /// The last non-chained command, kept to resend it after `6Cxx`.
    final_command: CommandApdu,
    response: Vec<u8>,
    get_response_rounds: usize,
    status_updates: usize,
    cancel_requested: bool,
    events: VecDeque<HostEvent>,
    phase: Phase,
    /// The CLA of the next GET RESPONSE, and the Le of the last one sent (for a resend
    /// with the other CLA).
    gr_cla: u8,
    gr_le: u32,
    /// The other CLA was tried already (at most once per exchange).
    gr_cla_switched: bool,
}

impl NfcCtapExchange {
    /// SELECT of the FIDO applet: `00 A4 04 00 08 A0000006472F0001 00`.
    pub fn select(config: &HostConfig) -> Self {
        let cmd = CommandApdu::new(0x00, INS_SELECT, 0x04, 0x00)
            .with_data(FIDO_AID)
            .with_le(MAX_SHORT_LE);
        let mut ex = Self::empty(Kind::Select, config, cmd.clone());
        ex.push_command(&cmd, LengthForm::Short, Sent::Final);
        ex
    }

    /// One CTAP message (command byte + CBOR) in an NFCCTAP_MSG, framed as the config's
    /// mode says.
    ///
    /// # Errors
    /// [`ApduError::MessageTooLarge`] when the message cannot be sent in that mode.
    pub fn ctap(message: &[u8], config: &HostConfig) -> Result<Self, ApduError> {
        let mode = config.mode;
        let block = config.short_block_size.clamp(1, MAX_SHORT_DATA);
        mode.apdu_count_with_block(message.len(), block)?;
        let p1 = if config.announce_get_response {
            P1_GETRESPONSE_SUPPORTED
        } else {
            0x00
        };
        let base = CommandApdu::new(CLA_NFCCTAP, INS_NFCCTAP_MSG, p1, 0x00);
        let last_start = match mode {
            ApduMode::Extended => 0,
            // Start of the last block: every earlier block is exactly `block` bytes.
            ApduMode::Short => message.len().saturating_sub(1) / block * block,
        };
        let (chained, last) = message.split_at(last_start.min(message.len()));
        let last_cmd = base.clone().with_data(last).with_le(mode.max_le());
        let mut ex = Self::empty(Kind::Ctap, config, last_cmd.clone());
        for chunk in chained.chunks(block) {
            let mut cmd = base.clone().with_data(chunk);
            cmd.cla |= CLA_CHAINING;
            ex.push_command(&cmd, LengthForm::Short, Sent::ChainBlock);
        }
        ex.push_command(&last_cmd, mode.form(), Sent::Final);
        Ok(ex)
    }

    fn empty(kind: Kind, config: &HostConfig, final_command: CommandApdu) -> Self {
        Self {
            kind,
            config: config.clone(),
            queue: VecDeque::new(),
            in_flight: None,
            final_command,
            response: Vec::new(),
            get_response_rounds: 0,
            status_updates: 0,
            cancel_requested: false,
            events: VecDeque::new(),
            phase: Phase::Running,
            gr_cla: match kind {
                Kind::Select => 0x00,
                Kind::Ctap => config.get_response_cla,
            },
            gr_le: MAX_SHORT_LE,
            gr_cla_switched: false,
        }
    }

    /// The CLA of GET RESPONSE this exchange uses now: the configured one, or the other
    /// after the card refused it with `6E00` / `6D00` (see
    /// [`HostConfig::get_response_cla`]).
    pub fn get_response_cla(&self) -> u8 {
        self.gr_cla
    }

    fn push_get_response(&mut self, le: u32) {
        self.gr_le = le;
        let cmd = CommandApdu::new(self.gr_cla, INS_GET_RESPONSE, 0x00, 0x00).with_le(le);
        self.push_command(&cmd, LengthForm::Short, Sent::GetResponse);
    }

    fn push_command(&mut self, cmd: &CommandApdu, form: LengthForm, sent: Sent) {
        // Every command built here is checked against its form by construction; should
        // that ever fail, the exchange fails instead of panicking.
        match cmd.encode(form) {
            Ok(bytes) => self.queue.push_back((bytes, sent)),
            Err(_) => self.phase = Phase::Failed,
        }
    }

    /// The next command APDU to send, if the exchange is not waiting for an answer.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.phase != Phase::Running || self.in_flight.is_some() {
            return None;
        }
        let (bytes, sent) = self.queue.pop_front()?;
        self.in_flight = Some(sent);
        Some(bytes)
    }

    /// The next event for the caller.
    pub fn poll_event(&mut self) -> Option<HostEvent> {
        self.events.pop_front()
    }

    /// Whether the exchange has ended (successfully or not).
    pub fn is_finished(&self) -> bool {
        self.phase != Phase::Running
    }

    /// Asks the key to cancel. The cancel (`80 11 11 00`) replaces the next
    /// NFCCTAP_GETRESPONSE poll, so it only reaches the key once it has answered `9100`;
    /// the key then answers CTAP2_ERR_KEEPALIVE_CANCEL, delivered as a normal
    /// [`HostEvent::Response`]. Has no effect on SELECT or on a finished exchange.
    pub fn cancel(&mut self) {
        if self.kind != Kind::Ctap || self.phase != Phase::Running {
            return;
        }
        self.cancel_requested = true;
        // A poll already queued but not yet sent becomes the cancel.
        let cancel = self.nfcctap_getresponse(P1_CANCEL);
        for (bytes, sent) in &mut self.queue {
            if *sent == Sent::Poll {
                bytes.clone_from(&cancel);
                *sent = Sent::Cancel;
            }
        }
    }

    /// Handles the card's answer to the last command from
    /// [`poll_transmit`](Self::poll_transmit).
    ///
    /// # Errors
    /// Truncated answers, status words the exchange cannot continue with (carrying the
    /// word), oversized responses and endless `61xx`/`9100` loops. After an error the
    /// exchange is finished. A response when none is expected is reported as
    /// [`ApduError::UnexpectedResponse`] and leaves the exchange as it was.
    pub fn handle_response(&mut self, bytes: &[u8]) -> Result<(), ApduError> {
        let Some(sent) = self.in_flight else {
            return Err(ApduError::UnexpectedResponse {
                state: match self.phase {
                    Phase::Running => "waiting to transmit, not for a response",
                    Phase::Done => "already finished",
                    Phase::Failed => "already failed",
                },
            });
        };
        self.in_flight = None;
        let result = self.step(sent, bytes);
        if result.is_err() {
            self.phase = Phase::Failed;
            self.queue.clear();
            self.response.clear();
        }
        result
    }

    fn step(&mut self, sent: Sent, bytes: &[u8]) -> Result<(), ApduError> {
        let rsp = ResponseApdu::parse(bytes)?;
        let status_error = ApduError::Status {
            sw: rsp.sw,
            during: sent.during(self.kind),
        };
        if sent == Sent::ChainBlock {
            return if rsp.sw.is_success() {
                Ok(())
            } else {
                Err(status_error)
            };
        }
        match rsp.sw {
            StatusWord::Success => {
                self.append(&rsp.data)?;
                let data = std::mem::take(&mut self.response);
                self.events.push_back(match self.kind {
                    Kind::Ctap => HostEvent::Response(data),
                    Kind::Select => HostEvent::Selected(AppletVersion::parse(&data)),
                });
                self.phase = Phase::Done;
                Ok(())
            }
            StatusWord::MoreData(xx) => {
                self.append(&rsp.data)?;
                self.count_get_response_round()?;
                let le = if xx == 0 { MAX_SHORT_LE } else { u32::from(xx) };
                self.push_get_response(le);
                Ok(())
            }
            // A card that wants the other CLA on GET RESPONSE (libfido2 #816: CTAP2
            // cards expecting 0x80) refuses the class or the instruction: once, the
            // same GET RESPONSE with the other CLA.
            StatusWord::ClaNotSupported | StatusWord::InsNotSupported
                if sent == Sent::GetResponse
                    && self.kind == Kind::Ctap
                    && !self.gr_cla_switched =>
            {
                self.gr_cla_switched = true;
                self.gr_cla = if self.gr_cla == CLA_NFCCTAP {
                    0x00
                } else {
                    CLA_NFCCTAP
                };
                self.count_get_response_round()?;
                self.push_get_response(self.gr_le);
                Ok(())
            }
            StatusWord::WrongLe(xx) if sent == Sent::Final => {
                // The card names the Le it wants; resend the same command with it.
                self.count_get_response_round()?;
                let le = if xx == 0 { MAX_SHORT_LE } else { u32::from(xx) };
                let cmd = self.final_command.clone().with_le(le);
                self.push_command(&cmd, cmd_form(&cmd), Sent::Final);
                Ok(())
            }
            StatusWord::WrongLe(xx) if sent == Sent::GetResponse => {
                self.count_get_response_round()?;
                let le = if xx == 0 { MAX_SHORT_LE } else { u32::from(xx) };
                self.push_get_response(le);
                Ok(())
            }
            StatusWord::StatusUpdate if self.kind == Kind::Ctap && sent != Sent::GetResponse => {
                self.status_updates += 1;
                if self.status_updates > self.config.max_status_updates {
                    return Err(ApduError::TooManyRounds {
                        kind: "9100 status update",
                        limit: self.config.max_status_updates,
                    });
                }
                // Data of a status update is the status byte, not part of the answer.
                self.response.clear();
                self.events
                    .push_back(HostEvent::StatusUpdate(ProcessingStatus::from_data(
                        &rsp.data,
                    )));
                let (p1, next) = if self.cancel_requested {
                    (P1_CANCEL, Sent::Cancel)
                } else {
                    (0x00, Sent::Poll)
                };
                let bytes = self.nfcctap_getresponse(p1);
                self.queue.push_back((bytes, next));
                Ok(())
            }
            _ => Err(status_error),
        }
    }

    fn nfcctap_getresponse(&self, p1: u8) -> Vec<u8> {
        let mode = self.config.mode;
        let cmd =
            CommandApdu::new(CLA_NFCCTAP, INS_NFCCTAP_GETRESPONSE, p1, 0x00).with_le(mode.max_le());
        // Header + Le only: fits either form.
        cmd.encode(mode.form()).unwrap_or_default()
    }

    fn count_get_response_round(&mut self) -> Result<(), ApduError> {
        self.get_response_rounds += 1;
        if self.get_response_rounds > self.config.max_get_response_rounds {
            return Err(ApduError::TooManyRounds {
                kind: "61xx GET RESPONSE",
                limit: self.config.max_get_response_rounds,
            });
        }
        Ok(())
    }

    fn append(&mut self, data: &[u8]) -> Result<(), ApduError> {
        if self.response.len().saturating_add(data.len()) > self.config.max_response_len {
            return Err(ApduError::ResponseTooLarge {
                limit: self.config.max_response_len,
            });
        }
        self.response.extend_from_slice(data);
        Ok(())
    }
}

impl fmt::Debug for NfcCtapExchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NfcCtapExchange")
            .field("kind", &self.kind)
            .field("mode", &self.config.mode)
            .field("phase", &self.phase)
            .field("in_flight", &self.in_flight)
            .field("queued_apdus", &self.queue.len())
            .field("response_len", &self.response.len())
            .field("get_response_rounds", &self.get_response_rounds)
            .field("status_updates", &self.status_updates)
            .field("cancel_requested", &self.cancel_requested)
            .field("pending_events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Drop for NfcCtapExchange {
    fn drop(&mut self) {
        for (bytes, _) in &mut self.queue {
            bytes.zeroize();
        }
        self.final_command.data.zeroize();
        self.response.zeroize();
        for event in &mut self.events {
            if let HostEvent::Response(bytes) = event {
                bytes.zeroize();
            }
        }
    }
}

fn cmd_form(cmd: &CommandApdu) -> LengthForm {
    if cmd.fits(LengthForm::Short) {
        LengthForm::Short
    } else {
        LengthForm::Extended
    }
}
