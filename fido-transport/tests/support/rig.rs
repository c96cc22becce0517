//! The PC/SC rig settings shared by the NFC test binaries: where the rig's env file is,
//! how its values are written, and the check that pcscd lists the vpcd reader.

use std::path::PathBuf;

use fido_transport::nfc::list_readers;

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
