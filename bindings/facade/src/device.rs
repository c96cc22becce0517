//! Security keys: listing and opening `usb:PATH`, `nfc:READER`, `softkey:STATEFILE`.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
#[cfg(feature = "softkey")]
use std::time::Duration;

use fido_transport::client::Authenticator;
#[cfg(feature = "softkey")]
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport, UserPresence};
use fido_transport::{CancelToken, Transport};
use lifecycle::template::KeyTransport;
#[cfg(feature = "softkey")]
use sha2::{Digest, Sha256};

use crate::types::hex;
#[cfg(any(feature = "hid", feature = "nfc"))]
use crate::DeviceEntry;
use crate::{DeviceInfo, DeviceList, FacadeError, Result};

/// What an opened device holds (locked for the duration of each operation).
pub(crate) struct DeviceState {
    pub(crate) client: Authenticator<Box<dyn Transport>>,
    pub(crate) transport: KeyTransport,
    pub(crate) can_reset_in_place: bool,
    pub(crate) serial: Option<String>,
    pub(crate) spec: String,
}

/// An opened security key. A clone-able handle: clones share the key.
///
/// One operation that changes the key (issue, activate, reissue, sign-in, self-service,
/// reset, set PIN) runs at a time: a second one started on the same device (from
/// another thread, a clone, or a prompt callback) while the first runs is refused at
/// once with a device error, reason `device_busy`, and touches nothing. Two issuances
/// on one key would otherwise both "succeed" and the second reset would silently
/// destroy the first's credential. Reading the key ([`Device::info`], [`Device::serial`])
/// waits for the operation in progress instead.
#[derive(Clone)]
pub struct Device {
    inner: Arc<Mutex<DeviceState>>,
    /// Set while an operation that changes the key runs (see [`Device::operate`]).
    busy: Arc<AtomicBool>,
    /// Cancels the key's transaction in progress (held outside the lock).
    cancel: CancelToken,
}

/// An operation's hold on a device: the handle is marked busy and its state locked
/// until this is dropped.
pub(crate) struct Operation<'a> {
    state: MutexGuard<'a, DeviceState>,
    busy: &'a AtomicBool,
}

impl Deref for Operation<'_> {
    type Target = DeviceState;
    fn deref(&self) -> &DeviceState {
        &self.state
    }
}

impl DerefMut for Operation<'_> {
    fn deref_mut(&mut self) -> &mut DeviceState {
        &mut self.state
    }
}

impl Drop for Operation<'_> {
    fn drop(&mut self) {
        self.busy.store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.lock();
        f.debug_struct("Device")
            .field("spec", &d.spec)
            .field("serial", &d.serial)
            .finish()
    }
}

impl Device {
    /// Opens a key: `usb:PATH` (hidraw path from [`list_devices`]), `nfc:READER` (a
    /// PC/SC reader name) or `softkey:STATEFILE` (a persistent software authenticator,
    /// created when the file does not exist; for tests and demos).
    ///
    /// A software key takes options after a `?`: `softkey:STATEFILE?presence=POLICY`
    /// sets how its simulated holder answers "touch your key": `approve` (at once, the
    /// default), `deny`, `timeout` (the key reports a timeout), `never` (the holder never
    /// touches; the wait ends only by [`Device::cancel`]) or `<N>ms` (a touch after N
    /// milliseconds). So a state file path cannot contain `?`.
    pub fn open(spec: &str) -> Result<Device> {
        let o = open_transport(spec)?;
        let (attachment, can_reset_in_place, serial) =
            (o.attachment, o.can_reset_in_place, o.serial.clone());
        Ok(Device::assemble_client(
            o.into_client(),
            attachment,
            can_reset_in_place,
            serial,
            spec,
        ))
    }

    /// A device over a transport the host owns (its own HID or card stack behind
    /// [`fido_transport::Transport`]). `label` names it in results (like a spec);
    /// `usb` says whether it is attached by USB (else NFC); `can_reset_in_place`
    /// whether a CTAP reset works right now without replugging.
    pub fn from_transport(
        transport: Box<dyn Transport>,
        label: &str,
        usb: bool,
        can_reset_in_place: bool,
    ) -> Device {
        let kind = if usb {
            KeyTransport::Usb
        } else {
            KeyTransport::Nfc
        };
        Device::assemble(transport, kind, can_reset_in_place, None, label)
    }

    fn assemble(
        transport: Box<dyn Transport>,
        kind: KeyTransport,
        can_reset_in_place: bool,
        serial: Option<String>,
        spec: &str,
    ) -> Device {
        Device::assemble_client(
            Authenticator::new(transport),
            kind,
            can_reset_in_place,
            serial,
            spec,
        )
    }

    fn assemble_client(
        client: Authenticator<Box<dyn Transport>>,
        kind: KeyTransport,
        can_reset_in_place: bool,
        serial: Option<String>,
        spec: &str,
    ) -> Device {
        let cancel = client.cancel_token();
        Device {
            inner: Arc::new(Mutex::new(DeviceState {
                client,
                transport: kind,
                can_reset_in_place,
                serial,
                spec: spec.to_owned(),
            })),
            busy: Arc::new(AtomicBool::new(false)),
            cancel,
        }
    }

    /// Cancels the operation waiting on this key ("touch your key") from any thread or
    /// from a prompt callback: the key answers CTAP2_ERR_KEEPALIVE_CANCEL and the
    /// operation fails with a device error; nothing is recorded half-done. Without an
    /// operation in progress it cancels the next wait for the user.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, DeviceState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts an operation that changes the key: refused with reason `device_busy` while
    /// another one runs on this device (any clone of the handle); otherwise the handle is
    /// marked busy and locked until the returned hold is dropped.
    pub(crate) fn operate(&self) -> Result<Operation<'_>> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(FacadeError::device(
                "the security key is busy: another operation is running on this device \
                 (operations on one device run one at a time; wait for it to finish)",
            )
            .with_reason("device_busy"));
        }
        // Marked busy before locking: a short read (info) holding the lock is waited for.
        let busy: &AtomicBool = &self.busy;
        let hold = Operation {
            state: self.lock(),
            busy,
        };
        Ok(hold)
    }

    /// The spec it was opened with.
    pub fn spec(&self) -> String {
        self.lock().spec.clone()
    }

    /// The key's serial number, if known (USB serial string; softkey: from its
    /// attestation certificate).
    pub fn serial(&self) -> Option<String> {
        self.lock().serial.clone()
    }

    /// What the key says about itself (authenticatorGetInfo).
    pub fn info(&self) -> Result<DeviceInfo> {
        let mut d = self.lock();
        let description = d.client.transport().describe();
        let info = d.client.info()?.clone();
        Ok(DeviceInfo {
            device: d.spec.clone(),
            description,
            serial: d.serial.clone(),
            aaguid: hex(&info.aaguid),
            versions: info.versions,
            extensions: info.extensions.unwrap_or_default(),
            options: info.options.unwrap_or_default().into_iter().collect(),
            min_pin_length: info.min_pin_length,
            firmware_version: info.firmware_version,
            remaining_discoverable_credentials: info.remaining_discoverable_credentials,
        })
    }
}

impl Device {
    /// Resets the key (authenticatorReset): every credential and the PIN are gone. The
    /// key asks for a touch; most keys refuse a reset later than ~10 s after power-up
    /// (a device error with reason `reattach_required`: replug it and try again).
    pub fn reset(&self) -> Result<()> {
        let mut d = self.operate()?;
        match d.client.reset(&mut |_| {}) {
            Ok(()) => Ok(()),
            Err(e) if e.needs_replug() => Err(FacadeError::device(
                "the key refuses reset this long after power-up: unplug it, plug it back in \
                 and reset it again within 10 seconds",
            )
            .with_reason("reattach_required")),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the key has a PIN set (getInfo option `clientPin`).
    pub fn has_pin(&self) -> Result<bool> {
        let mut d = self.lock();
        let info = d.client.info()?;
        Ok(info
            .options
            .as_ref()
            .and_then(|o| o.iter().find(|(k, _)| k == "clientPin").map(|(_, v)| *v))
            .unwrap_or(false))
    }

    /// Sets the key's PIN (`current` is `None`: the key has none yet) or changes it.
    pub fn set_pin(&self, current: Option<&str>, new_pin: &str) -> Result<()> {
        let mut d = self.operate()?;
        match current {
            Some(c) => d.client.change_pin(c, new_pin)?,
            None => d.client.set_pin(new_pin)?,
        }
        Ok(())
    }
}

/// The FIDO keys on USB HID and the PC/SC readers. A subsystem that cannot be listed
/// (no hidraw access, no PC/SC daemon) is named in [`DeviceList::unavailable`].
pub fn list_devices() -> DeviceList {
    let mut out = DeviceList::default();
    list_usb(&mut out);
    list_nfc(&mut out);
    out
}

/// Adds the FIDO keys on USB HID (or why they cannot be listed) to `out`.
#[cfg(feature = "hid")]
fn list_usb(out: &mut DeviceList) {
    match fido_transport::hid::list_devices() {
        Ok(list) => out.devices.extend(list.into_iter().map(|d| DeviceEntry {
            device: format!("usb:{}", d.path),
            transport: "usb".into(),
            vendor_id: Some(d.vendor_id),
            product_id: Some(d.product_id),
            manufacturer: d.manufacturer,
            product: d.product,
            serial: d.serial,
            card_present: None,
            fido_applet: None,
        })),
        Err(e) => out.unavailable.push(format!("USB HID: {e}")),
    }
}

/// Without the `hid` feature: USB HID is named as unavailable.
#[cfg(not(feature = "hid"))]
fn list_usb(out: &mut DeviceList) {
    out.unavailable
        .push(format!("USB HID: {}", fido_transport::hid::unavailable()));
}

/// Adds the PC/SC readers (or why they cannot be listed) to `out`.
#[cfg(feature = "nfc")]
fn list_nfc(out: &mut DeviceList) {
    match fido_transport::nfc::list_readers() {
        Ok(list) => out.devices.extend(list.into_iter().map(|r| DeviceEntry {
            fido_applet: Some(r.has_fido_applet()),
            device: format!("nfc:{}", r.name),
            transport: "nfc".into(),
            vendor_id: None,
            product_id: None,
            manufacturer: None,
            product: None,
            serial: None,
            card_present: Some(r.card_present),
        })),
        Err(e) => out.unavailable.push(format!("PC/SC: {e}")),
    }
}

/// Without the `nfc` feature: PC/SC is named as unavailable.
#[cfg(not(feature = "nfc"))]
fn list_nfc(out: &mut DeviceList) {
    out.unavailable
        .push(format!("PC/SC: {}", fido_transport::nfc::unavailable()));
}

/// What opening a device spec gives.
pub(crate) struct Opened {
    /// The transport to the key.
    pub(crate) transport: Box<dyn Transport>,
    /// How the key is attached.
    pub(crate) attachment: KeyTransport,
    /// A CTAP reset works right now without replugging.
    pub(crate) can_reset_in_place: bool,
    /// The key's serial, if the transport knows it.
    pub(crate) serial: Option<String>,
    /// Where the key sits at the station (USB port, reader), for the replug reset.
    pub(crate) slot: Option<StationSlot>,
    /// Which key this is, as far as the station can tell (bulk rows check it).
    pub(crate) evidence: lifecycle::engine::KeyEvidence,
}

/// The slot of an opened key (see [`fido_transport::client::KeySlot`]).
pub(crate) enum StationSlot {
    /// A USB port: "remove the key", "insert it again".
    #[cfg(feature = "hid")]
    Usb(fido_transport::hid::HidSlot),
    /// A PC/SC reader: "lift the key", "put it back".
    #[cfg(feature = "nfc")]
    Nfc(fido_transport::nfc::NfcSlot),
}

impl Opened {
    /// The client of the opened key, knowing its slot so a reset before issuance can
    /// have the operator replug it (`Authenticator::reset_at_station`).
    pub(crate) fn into_client(self) -> Authenticator<Box<dyn Transport>> {
        #[allow(unused_mut)] // no slot kind is compiled in without `hid` and `nfc`
        let mut client = Authenticator::new(self.transport);
        #[cfg(any(feature = "hid", feature = "nfc"))]
        {
            use fido_transport::client::{BoxedSlot, ReplugTimeouts};
            match self.slot {
                #[cfg(feature = "hid")]
                Some(StationSlot::Usb(s)) => {
                    client.attach_slot(BoxedSlot(s), ReplugTimeouts::default())
                }
                #[cfg(feature = "nfc")]
                Some(StationSlot::Nfc(s)) => {
                    client.attach_slot(BoxedSlot(s), ReplugTimeouts::default())
                }
                None => {}
            }
        }
        #[cfg(not(any(feature = "hid", feature = "nfc")))]
        let _ = self.slot;
        client
    }
}

/// Opens the transport of a device spec (see [`Device::open`]).
pub(crate) fn open_transport(spec: &str) -> Result<Opened> {
    let opened = if let Some(path) = spec.strip_prefix("usb:") {
        open_usb(path)?
    } else if let Some(reader) = spec.strip_prefix("nfc:") {
        open_nfc(reader)?
    } else if let Some(rest) = spec.strip_prefix("softkey:") {
        open_softkey(rest)?
    } else {
        return Err(FacadeError::usage(format!(
            "device {spec:?}: expected usb:PATH, nfc:READER or softkey:STATEFILE"
        )));
    };
    Ok(opened)
}

/// Opens `usb:PATH`.
#[cfg(feature = "hid")]
fn open_usb(path: &str) -> Result<Opened> {
    let all = fido_transport::hid::list_devices().ok();
    let listed = all
        .as_ref()
        .and_then(|l| l.iter().find(|d| d.path == path).cloned());
    let evidence = lifecycle::engine::KeyEvidence {
        keys_attached: all.as_ref().map(Vec::len),
        serial: listed
            .as_ref()
            .and_then(|d| d.serial.clone())
            .filter(|s| !s.is_empty())
            .map(|value| lifecycle::engine::KeySerial {
                value,
                source: lifecycle::engine::SerialSource::UsbSerialString,
            }),
    };
    // Software cannot power-cycle a USB key; with its port known the operator is
    // asked to replug it for a reset, so a USB key can be reset before issuance.
    let slot = listed
        .as_ref()
        .map(|d| StationSlot::Usb(fido_transport::hid::HidSlot::for_device(d)));
    Ok(Opened {
        transport: Box::new(fido_transport::hid::open(path)?),
        attachment: KeyTransport::Usb,
        can_reset_in_place: slot.is_some(),
        serial: listed.and_then(|d| d.serial),
        slot,
        evidence,
    })
}

/// Without the `hid` feature: `usb:` is a typed "USB HID unavailable" device error.
#[cfg(not(feature = "hid"))]
fn open_usb(_path: &str) -> Result<Opened> {
    Err(fido_transport::hid::unavailable().into())
}

/// Opens `nfc:READER`.
#[cfg(feature = "nfc")]
fn open_nfc(reader: &str) -> Result<Opened> {
    let mode = fido_transport::nfc::NfcMode::default();
    Ok(Opened {
        transport: Box::new(fido_transport::nfc::NfcTransport::open(reader, mode)?),
        attachment: KeyTransport::Nfc,
        can_reset_in_place: true,
        serial: None,
        slot: Some(StationSlot::Nfc(fido_transport::nfc::NfcSlot::new(
            reader, mode,
        ))),
        evidence: lifecycle::engine::KeyEvidence {
            keys_attached: fido_transport::nfc::list_readers()
                .ok()
                .map(|r| r.iter().filter(|r| r.has_fido_applet()).count()),
            serial: None,
        },
    })
}

/// Without the `nfc` feature: `nfc:` is a typed "NFC unavailable: install
/// pcscd/pcsc-lite ..." device error.
#[cfg(not(feature = "nfc"))]
fn open_nfc(_reader: &str) -> Result<Opened> {
    Err(fido_transport::nfc::unavailable().into())
}

/// Opens `softkey:STATEFILE[?OPTIONS]`.
#[cfg(feature = "softkey")]
fn open_softkey(rest: &str) -> Result<Opened> {
    let (path, presence) = softkey_options(rest)?;
    if path.is_empty() {
        return Err(FacadeError::usage(
            "device: softkey: needs a state file path",
        ));
    }
    let config = SoftConfig {
        presence,
        ..SoftConfig::default()
    };
    let soft = SoftAuthenticator::open_persistent(path, config).map_err(|e| {
        FacadeError::device(format!("software key {path}: {e}")).with_reason("device_io")
    })?;
    let serial = hex(Sha256::digest(soft.attestation_certificate())
        .get(..4)
        .unwrap_or(&[]))
    .to_uppercase();
    Ok(Opened {
        transport: Box::new(SoftTransport::new(soft)),
        attachment: KeyTransport::Software,
        can_reset_in_place: true,
        serial: Some(serial),
        slot: None,
        evidence: lifecycle::engine::KeyEvidence::default(),
    })
}

/// Without the `softkey` feature: `softkey:` is a usage error.
#[cfg(not(feature = "softkey"))]
fn open_softkey(_rest: &str) -> Result<Opened> {
    Err(FacadeError::usage(
        "device: software keys (softkey:) are not in this build (cargo feature `softkey`)",
    ))
}

/// How long the holder of a `presence=never` software key takes to touch it: long
/// enough to be never in practice, short enough to add to any `Instant`.
#[cfg(feature = "softkey")]
const NEVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

#[cfg(feature = "softkey")]
/// Splits a software key's `STATEFILE[?presence=POLICY]` (see [`Device::open`]).
#[cfg(feature = "softkey")]
fn softkey_options(rest: &str) -> Result<(&str, UserPresence)> {
    let Some((path, query)) = rest.rsplit_once('?') else {
        return Ok((rest, UserPresence::Approve));
    };
    let mut presence = UserPresence::Approve;
    for option in query.split('&') {
        let value = match option.split_once('=') {
            Some(("presence", value)) => value,
            _ => {
                return Err(FacadeError::usage(format!(
                    "device: softkey option {option:?}: expected presence=POLICY"
                )))
            }
        };
        presence = match value {
            "approve" => UserPresence::Approve,
            "deny" => UserPresence::Deny,
            "timeout" => UserPresence::TimeOut,
            "never" => UserPresence::Delay(NEVER),
            other => match other.strip_suffix("ms").and_then(|n| n.parse::<u64>().ok()) {
                Some(ms) => UserPresence::Delay(Duration::from_millis(ms).min(NEVER)),
                None => {
                    return Err(FacadeError::usage(format!(
                        "device: softkey presence {other:?}: expected approve, deny, \
                         timeout, never or <N>ms"
                    )))
                }
            },
        };
    }
    Ok((path, presence))
}

#[cfg(all(test, feature = "softkey"))]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn softkey_options_set_the_presence_policy() {
        let cases = [
            ("/tmp/k.json", "/tmp/k.json", UserPresence::Approve),
            ("k.json?presence=approve", "k.json", UserPresence::Approve),
            ("k.json?presence=deny", "k.json", UserPresence::Deny),
            ("k.json?presence=timeout", "k.json", UserPresence::TimeOut),
            (
                "k.json?presence=never",
                "k.json",
                UserPresence::Delay(NEVER),
            ),
            (
                "k.json?presence=250ms",
                "k.json",
                UserPresence::Delay(Duration::from_millis(250)),
            ),
        ];
        for (spec, path, presence) in cases {
            assert_eq!(
                softkey_options(spec).expect(spec),
                (path, presence),
                "{spec}"
            );
        }
        for bad in [
            "k.json?presence=soon",
            "k.json?colour=red",
            "k.json?presence",
        ] {
            let e = softkey_options(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::Usage, "{bad}");
        }
    }

    #[test]
    fn a_softkey_whose_holder_never_touches_waits_until_cancelled() {
        let dir =
            std::env::temp_dir().join(format!("keysmith-facade-never-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let state = dir.join("never.json");
        let device =
            Device::open(&format!("softkey:{}?presence=never", state.display())).expect("open");
        assert!(
            state.exists(),
            "the state file is the path without the options"
        );
        // getInfo needs no touch; a reset does (the softkey was just powered up).
        assert!(device.info().is_ok());
        let canceller = device.clone();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let started = std::time::Instant::now();
        // A cancel before the transaction starts is cleared by it: repeat until it ends.
        let cancel = std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                canceller.cancel();
            }
        });
        let e = device.lock().client.reset(&mut |_| {}).unwrap_err();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        cancel.join().expect("cancel thread");
        assert!(e.to_string().to_lowercase().contains("cancel"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
