//! The PC/SC rig shared by the NFC test modules: where the rig's env file is, how its
//! values are written, the check that pcscd lists the vpcd reader, and the one virtual
//! card in vpcd's slot, whose applet is whatever the test holding its lock put in.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use fido_core::apdu::CardConfig;
use fido_transport::nfc::{
    list_readers, CardApplet, NfcMode, NfcTransport, VpcdCardHandle, VpcdCardOptions,
};

/// The rig folder (`PCSC_RIG_DIR`, else `target/pcsc-rig`).
pub fn rig_dir() -> PathBuf {
    match std::env::var_os("PCSC_RIG_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pcsc-rig"),
    }
}

/// Reads `KEY='value'` (or shell-escaped `KEY=va\ lue`) lines of the rig's env file.
pub fn env_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.strip_prefix('=')?;
        if let Some(quoted) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            return Some(quoted.to_owned());
        }
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                out.extend(chars.next());
            } else {
                out.push(c);
            }
        }
        Some(out)
    })
}

/// The vpcd reader name and card port of a running rig, after checking pcscd lists the
/// reader; a plain message when the rig is not running or not usable.
pub fn rig_reader_and_port() -> Result<(String, String), String> {
    let env_file = rig_dir().join("env");
    let text = std::fs::read_to_string(&env_file).map_err(|e| {
        format!(
            "PC/SC rig not running: cannot read {} ({e}); start it with scripts/pcsc-rig-start.sh",
            env_file.display()
        )
    })?;
    let reader = env_value(&text, "PCSC_RIG_READER")
        .ok_or_else(|| format!("{} has no PCSC_RIG_READER", env_file.display()))?;
    let port = env_value(&text, "PCSC_RIG_VPCD_PORT").unwrap_or_else(|| "35963".to_owned());
    let readers = list_readers().map_err(|e| {
        format!("PC/SC rig not usable: {e}; (re)start it with scripts/pcsc-rig-start.sh")
    })?;
    if !readers.iter().any(|r| r.name == reader) {
        return Err(format!(
            "pcscd does not list reader {reader:?} (it lists {:?}); restart the rig",
            readers.iter().map(|r| &r.name).collect::<Vec<_>>()
        ));
    }
    Ok((reader, port))
}

/// The card's applet: whichever one the test holding the card's lock put in (none
/// yet: every request is answered CTAP1_ERR_INVALID_COMMAND).
#[derive(Clone, Default)]
pub struct AppletSlot(Arc<Mutex<Option<Box<dyn CardApplet>>>>);

impl AppletSlot {
    fn put(&self, applet: impl CardApplet + 'static) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(applet));
    }
}

impl CardApplet for AppletSlot {
    fn ctap(&mut self, request: &[u8]) -> Vec<u8> {
        match self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            Some(applet) => applet.ctap(request),
            None => vec![0x01], // CTAP1_ERR_INVALID_COMMAND
        }
    }

    fn power_cycle(&mut self) {
        if let Some(applet) = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            applet.power_cycle();
        }
    }
}

/// The one virtual card on vpcd's slot 0 (vpcd has one card slot, so the NFC test
/// modules of this binary share it) and the reader pcscd shows it in.
pub struct SharedCard {
    /// The virtual card's thread.
    pub card: VpcdCardHandle,
    /// The vpcd reader the card is in.
    pub reader: String,
    applet: AppletSlot,
}

static CARD: OnceLock<Result<Mutex<SharedCard>, String>> = OnceLock::new();

fn start_card() -> Result<Mutex<SharedCard>, String> {
    let (reader, port) = rig_reader_and_port()?;
    // pcscd can lose a card that reconnects right after a drop (a previous test run);
    // if the card does not show up, start over after vpcd's reconnect pause.
    let mut last = String::new();
    for _attempt in 0..3 {
        let applet = AppletSlot::default();
        let options =
            VpcdCardOptions::new(CardConfig::extended()).with_addr(format!("127.0.0.1:{port}"));
        let card = VpcdCardHandle::spawn(options, applet.clone()).map_err(|e| e.to_string())?;
        if !card.wait_connected(Duration::from_secs(10)) {
            return Err(format!(
                "the virtual card could not connect to vpcd on port {port}: {:?}",
                card.last_error()
            ));
        }
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            let seen = list_readers()
                .map(|rs| rs.iter().any(|r| r.name == reader && r.has_fido_applet()))
                .unwrap_or(false);
            if seen {
                return Ok(Mutex::new(SharedCard {
                    card,
                    reader,
                    applet,
                }));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        last = format!(
            "pcscd never saw the virtual card in {reader:?} (card connected: {}, APDUs: {})",
            card.is_connected(),
            card.apdus()
        );
        card.stop();
        std::thread::sleep(Duration::from_millis(1600));
    }
    Err(last)
}

/// The shared card, locked for this test, running `applet`; `None` (after a note) when
/// the rig is not running outside CI.
pub fn lock_card(applet: impl CardApplet + 'static) -> Option<MutexGuard<'static, SharedCard>> {
    match CARD.get_or_init(start_card) {
        Ok(card) => {
            let card = card.lock().unwrap_or_else(PoisonError::into_inner);
            card.applet.put(applet);
            Some(card)
        }
        Err(why) if std::env::var_os("CI").is_some() => panic!("CI: {why}"),
        Err(why) => {
            eprintln!("SKIPPED (set CI=1 to make this fail): {why}");
            None
        }
    }
}

impl SharedCard {
    /// Connects to the card through pcscd in `mode`.
    pub fn connect(&self, mode: NfcMode) -> NfcTransport {
        // pcscd polls card presence: allow it a moment after a reconnect.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match NfcTransport::open(&self.reader, mode) {
                Ok(t) => return t,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("open {:?} failed, retrying: {e}", self.reader);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("cannot open {:?}: {e}", self.reader),
            }
        }
    }
}
