//! Reset at the station: have the operator remove the key and attach it again, check it
//! is the same key, and reset it at once, inside the window a key gives after power-up
//! (5 s on YubiKeys before firmware 5.5.2, 10 s on most keys). ykman's `fido reset`
//! does the same. Over NFC the prompts say "lift the key off the reader" / "put it back":
//! many contactless readers do not drop the field on an unpowered reconnect, so the
//! transport's own power cycle does not always reopen the window.

use std::time::{Duration, Instant};

use fido_core::commands::AuthenticatorInfo;
use sha2::{Digest, Sha256};

use super::Authenticator;
use crate::{Error, Progress, Transport, TransportKind};

/// What the operator is asked to do during [`reset_after_replug`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetPrompt {
    /// USB: "Remove the security key."
    RemoveKey,
    /// USB: "Insert the security key again."
    InsertKey,
    /// NFC: "Lift the security key off the reader."
    LiftKey,
    /// NFC: "Put the security key back on the reader."
    PlaceKey,
}

impl ResetPrompt {
    /// The text to show the operator.
    pub fn message(self) -> &'static str {
        match self {
            ResetPrompt::RemoveKey => "Remove the security key.",
            ResetPrompt::InsertKey => {
                "Insert the security key again. It will be reset at once: touch it when it blinks."
            }
            ResetPrompt::LiftKey => "Lift the security key off the reader.",
            ResetPrompt::PlaceKey => {
                "Put the security key back on the reader. It will be reset at once: touch it when asked."
            }
        }
    }
}

/// Where a key sits at the station: whether one is attached, and opening it.
pub trait KeySlot {
    /// The transport of an opened key.
    type Transport: Transport;
    /// True while a key is attached (USB: a FIDO HID device is listed; NFC: a card is on
    /// the reader).
    fn is_attached(&mut self) -> Result<bool, Error>;
    /// Opens the key attached now.
    fn open(&mut self) -> Result<Self::Transport, Error>;
    /// How keys are attached here.
    fn kind(&self) -> TransportKind;
    /// The serial the platform reports for the attached key (USB HID serial string),
    /// if any.
    fn serial(&mut self) -> Option<String> {
        None
    }
}

/// Who a key is, as far as can be told without its PIN: compared before and after a
/// replug so a reset never erases another key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyIdentity {
    /// The model (AAGUID).
    pub aaguid: [u8; 16],
    /// The serial the platform reports, if any.
    pub serial: Option<String>,
    /// SHA-256 of the key's getInfo without the fields that change between reads or
    /// power cycles (encrypted identifier and store state, remaining credentials, UV
    /// count), as ykman compares CTAP2 info when there is no serial.
    pub info_fingerprint: [u8; 32],
}

impl KeyIdentity {
    /// The identity of a key from its getInfo and platform serial.
    pub fn of(info: &AuthenticatorInfo, serial: Option<String>) -> Self {
        let mut stable = info.clone();
        stable.enc_identifier = None;
        stable.enc_cred_store_state = None;
        stable.remaining_discoverable_credentials = None;
        stable.uv_count_since_last_pin_entry = None;
        let bytes = fido_core::commands::encode_response(&stable);
        KeyIdentity {
            aaguid: info.aaguid,
            serial,
            info_fingerprint: Sha256::digest(&bytes).into(),
        }
    }

    fn mismatch(&self, other: &KeyIdentity) -> Option<String> {
        if self.aaguid != other.aaguid {
            return Some("another model (AAGUID)".to_owned());
        }
        if let (Some(a), Some(b)) = (&self.serial, &other.serial) {
            if a != b {
                return Some(format!("serial {b} instead of {a}"));
            }
        }
        (self.info_fingerprint != other.info_fingerprint)
            .then(|| "its getInfo differs (another key of the same model)".to_owned())
    }
}

/// Timing of [`reset_after_replug`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplugTimeouts {
    /// How long to wait for the key to be removed.
    pub remove: Duration,
    /// How long to wait for it to come back.
    pub insert: Duration,
    /// Pause between presence checks.
    pub poll: Duration,
}

impl Default for ReplugTimeouts {
    fn default() -> Self {
        ReplugTimeouts {
            remove: Duration::from_secs(60),
            insert: Duration::from_secs(60),
            poll: Duration::from_millis(100),
        }
    }
}

fn wait_until<T: Transport>(
    slot: &mut dyn KeySlot<Transport = T>,
    attached: bool,
    timeout: Duration,
    poll: Duration,
) -> Result<(), Error> {
    let start = Instant::now();
    loop {
        if slot.is_attached()? == attached {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(Error::Timeout(timeout));
        }
        std::thread::sleep(poll);
    }
}

/// The replug itself: prompts, waits, opens the key and checks it is `expected`.
fn reattach<T: Transport>(
    slot: &mut dyn KeySlot<Transport = T>,
    expected: &KeyIdentity,
    timeouts: ReplugTimeouts,
    prompt: &mut dyn FnMut(ResetPrompt),
) -> Result<Authenticator<T>, Error> {
    let nfc = slot.kind() == TransportKind::Nfc;
    prompt(if nfc {
        ResetPrompt::LiftKey
    } else {
        ResetPrompt::RemoveKey
    });
    wait_until(slot, false, timeouts.remove, timeouts.poll)?;
    prompt(if nfc {
        ResetPrompt::PlaceKey
    } else {
        ResetPrompt::InsertKey
    });
    wait_until(slot, true, timeouts.insert, timeouts.poll)?;
    let transport = slot.open()?;
    let serial = slot.serial();
    let mut key = Authenticator::new(transport);
    let found = KeyIdentity::of(key.info()?, serial);
    if let Some(why) = expected.mismatch(&found) {
        return Err(Error::DifferentKey(why));
    }
    Ok(key)
}

/// Resets the key in `slot` after a replug: prompts "remove" (NFC: "lift"), waits for
/// the key to go, prompts "insert" ("put it back"), waits for it, opens it, checks it
/// is `expected` ([`Error::DifferentKey`] otherwise; nothing is erased) and sends
/// authenticatorReset at once. Returns the client of the freshly reset key.
///
/// Errors: [`Error::Timeout`] when the key is not removed or not attached in time,
/// [`Error::ReattachRequired`] / [`Error::ResetBlocked`] ("too late, replug and try
/// again") when the key was attached too long before the reset reached it (the
/// operator was slow, or the station busy), [`Error::ResetRefused`] when the key does
/// not allow reset over this transport. `progress` reports the touch
/// ([`Progress::LongTouchNeeded`] when the key wants a press and hold).
pub fn reset_after_replug<S: KeySlot>(
    slot: &mut S,
    expected: &KeyIdentity,
    timeouts: ReplugTimeouts,
    prompt: &mut dyn FnMut(ResetPrompt),
    progress: &mut dyn FnMut(Progress),
) -> Result<Authenticator<S::Transport>, Error> {
    let mut key = reattach(slot, expected, timeouts, prompt)?;
    key.reset(progress)?;
    Ok(key)
}

/// A key's place at the station, kept by its client (see
/// [`Authenticator::attach_slot`]).
pub(crate) struct Station<T> {
    slot: Box<dyn KeySlot<Transport = T> + Send>,
    timeouts: ReplugTimeouts,
}

/// A slot whose keys open as `Box<dyn Transport>`, for an
/// `Authenticator<Box<dyn Transport>>` that picks its transport at run time.
#[derive(Clone, Debug)]
pub struct BoxedSlot<S>(pub S);

impl<S: KeySlot> KeySlot for BoxedSlot<S>
where
    S::Transport: 'static,
{
    type Transport = Box<dyn Transport>;
    fn is_attached(&mut self) -> Result<bool, Error> {
        self.0.is_attached()
    }
    fn open(&mut self) -> Result<Box<dyn Transport>, Error> {
        Ok(Box::new(self.0.open()?))
    }
    fn kind(&self) -> TransportKind {
        self.0.kind()
    }
    fn serial(&mut self) -> Option<String> {
        self.0.serial()
    }
}

impl<T: Transport> Authenticator<T> {
    /// Tells the client where its key sits at the station (the USB port or reader it
    /// was opened from), so [`Authenticator::reset_at_station`] can have the operator
    /// replug it. `timeouts` bound the operator's removal and reattachment.
    pub fn attach_slot<S>(&mut self, slot: S, timeouts: ReplugTimeouts)
    where
        S: KeySlot<Transport = T> + Send + 'static,
    {
        self.station = Some(Station {
            slot: Box::new(slot),
            timeouts,
        });
    }

    /// True when a slot is attached ([`Authenticator::attach_slot`]): a reset can be
    /// made at any time, through a replug.
    pub fn can_replug(&self) -> bool {
        self.station.is_some()
    }

    /// Resets the key at the station. With a slot attached: when `require_replug`
    /// (USB: software cannot power-cycle a USB key) the operator is asked at once to
    /// remove and reinsert the key ("lift it and put it back" over NFC), the key is
    /// checked to be the same ([`KeyIdentity`]: AAGUID, serial, getInfo) and reset
    /// right away; otherwise a plain [`Authenticator::reset`] is tried first and the
    /// replug follows only when the key answers "too late" (an NFC reader whose
    /// unpowered reconnect did not restart the window). The client then talks to the
    /// reattached key. Without a slot this is [`Authenticator::reset`].
    ///
    /// Errors: those of [`reset_after_replug`]; [`Error::DifferentKey`] leaves the
    /// client on the key attached now (nothing erased).
    pub fn reset_at_station(
        &mut self,
        require_replug: bool,
        prompt: &mut dyn FnMut(ResetPrompt),
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), Error> {
        let Some(mut station) = self.station.take() else {
            return self.reset(progress);
        };
        let result = self.replug_reset(&mut station, require_replug, prompt, progress);
        self.station = Some(station);
        result
    }

    fn replug_reset(
        &mut self,
        station: &mut Station<T>,
        require_replug: bool,
        prompt: &mut dyn FnMut(ResetPrompt),
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), Error> {
        let serial = station.slot.serial();
        let expected = KeyIdentity::of(self.info()?, serial);
        if !require_replug {
            match self.reset(progress) {
                Err(e) if e.needs_replug() => {
                    tracing::info!(error = %e, "reset: too late in place, asking for a replug");
                }
                other => return other,
            }
        }
        let fresh = reattach(&mut *station.slot, &expected, station.timeouts, prompt)?;
        self.transport = fresh.transport;
        self.info = fresh.info;
        self.reset(progress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_ignores_volatile_fields_and_sees_other_keys() {
        let info = AuthenticatorInfo {
            versions: vec!["FIDO_2_1".into()],
            aaguid: [1; 16],
            firmware_version: Some(0x050403),
            enc_identifier: Some(vec![1; 32]),
            remaining_discoverable_credentials: Some(25),
            ..Default::default()
        };
        let a = KeyIdentity::of(&info, None);
        let mut later = info.clone();
        later.enc_identifier = Some(vec![2; 32]);
        later.remaining_discoverable_credentials = Some(24);
        assert_eq!(a.mismatch(&KeyIdentity::of(&later, None)), None);
        let mut other = info.clone();
        other.firmware_version = Some(0x050701);
        assert!(a.mismatch(&KeyIdentity::of(&other, None)).is_some());
        other = info.clone();
        other.aaguid = [2; 16];
        assert!(a
            .mismatch(&KeyIdentity::of(&other, None))
            .unwrap()
            .contains("AAGUID"));
        let s1 = KeyIdentity::of(&info, Some("123".into()));
        assert!(s1
            .mismatch(&KeyIdentity::of(&info, Some("456".into())))
            .unwrap()
            .contains("456"));
    }

    #[test]
    fn reset_window_by_firmware() {
        let mut info = AuthenticatorInfo::default();
        assert_eq!(super::super::reset_window(&info), Duration::from_secs(10));
        info.firmware_version = Some(0x050403);
        assert_eq!(super::super::reset_window(&info), Duration::from_secs(5));
        info.firmware_version = Some(0x050504);
        assert_eq!(super::super::reset_window(&info), Duration::from_secs(10));
    }

    #[test]
    fn prompts_say_what_to_do() {
        assert!(ResetPrompt::RemoveKey.message().contains("Remove"));
        assert!(ResetPrompt::LiftKey.message().contains("reader"));
        assert!(ResetPrompt::PlaceKey.message().contains("back"));
    }
}
