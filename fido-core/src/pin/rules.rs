//! PIN rules (CTAP 2.1 §6.5.1): length in code points and bytes, padding, pin hash.

use core::fmt;

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::PinError;

/// The floor of the minimum PIN length, in Unicode code points.
pub const MIN_PIN_CODE_POINTS: usize = 4;
/// The maximum PIN length in UTF-8 bytes.
pub const MAX_PIN_BYTES: usize = 63;
/// Length of the zero-padded PIN sent (encrypted) in setPIN and changePIN.
pub const PADDED_PIN_LEN: usize = 64;

/// A PIN that satisfies the CTAP rules: at least `max(4, minPINLength)` Unicode code
/// points, at most 63 bytes of UTF-8, no NUL. Zeroized on drop, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Pin(String);

impl Pin {
    /// Validates `pin` against the default minimum of 4 code points.
    pub fn new(pin: &str) -> Result<Pin, PinError> {
        Pin::with_min_length(pin, MIN_PIN_CODE_POINTS)
    }

    /// Validates `pin` against the key's current minimum PIN length (getInfo
    /// `minPINLength`); the minimum used is never below 4.
    pub fn with_min_length(pin: &str, min_code_points: usize) -> Result<Pin, PinError> {
        check(pin, min_code_points)?;
        Ok(Pin(pin.to_owned()))
    }

    /// Authenticator side: the PIN inside a decrypted `paddedNewPin` (64 bytes, the PIN
    /// followed by zero bytes), validated as in [`with_min_length`](Self::with_min_length).
    pub fn from_padded(padded: &[u8], min_code_points: usize) -> Result<Pin, PinError> {
        if padded.len() != PADDED_PIN_LEN {
            return Err(PinError::PaddedPinLength { len: padded.len() });
        }
        let end = padded.iter().position(|&b| b == 0).unwrap_or(padded.len());
        let bytes = padded.get(..end).unwrap_or(padded);
        let text = core::str::from_utf8(bytes).map_err(|_| PinError::NotUtf8)?;
        Pin::with_min_length(text, min_code_points)
    }

    /// Checks this PIN against a (possibly raised) minimum length, e.g. after
    /// setMinPINLength.
    pub fn check_min_length(&self, min_code_points: usize) -> Result<(), PinError> {
        check(&self.0, min_code_points)
    }

    /// The PIN text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Length in Unicode code points.
    pub fn code_points(&self) -> usize {
        self.0.chars().count()
    }

    /// The PIN's UTF-8 bytes followed by zeros, 64 bytes in all (`paddedPin`).
    pub fn padded(&self) -> Zeroizing<[u8; PADDED_PIN_LEN]> {
        let mut out = Zeroizing::new([0u8; PADDED_PIN_LEN]);
        // Validation guarantees at most 63 bytes; `zip` keeps this infallible anyway.
        for (dst, src) in out.iter_mut().zip(self.0.as_bytes()) {
            *dst = *src;
        }
        out
    }

    /// `LEFT(SHA-256(pin), 16)`, the pinHash encrypted into `pinHashEnc`.
    pub fn pin_hash(&self) -> Zeroizing<[u8; 16]> {
        let mut digest: [u8; 32] = Sha256::digest(self.0.as_bytes()).into();
        let mut out = Zeroizing::new([0u8; 16]);
        for (dst, src) in out.iter_mut().zip(digest.iter()) {
            *dst = *src;
        }
        digest.zeroize();
        out
    }

    /// Constant-time comparison of two pin hashes (authenticator side).
    pub fn hashes_match(a: &[u8; 16], b: &[u8; 16]) -> bool {
        let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        core::hint::black_box(diff) == 0
    }
}

impl TryFrom<String> for Pin {
    type Error = PinError;

    /// Validates against the default minimum; the string is zeroized either way.
    fn try_from(pin: String) -> Result<Pin, PinError> {
        let pin = Zeroizing::new(pin);
        check(&pin, MIN_PIN_CODE_POINTS)?;
        Ok(Pin(pin.as_str().to_owned()))
    }
}

impl TryFrom<&str> for Pin {
    type Error = PinError;

    fn try_from(pin: &str) -> Result<Pin, PinError> {
        Pin::new(pin)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

fn check(pin: &str, min_code_points: usize) -> Result<(), PinError> {
    if pin.contains('\0') {
        return Err(PinError::ContainsNul);
    }
    if pin.len() > MAX_PIN_BYTES {
        return Err(PinError::TooLong {
            max: MAX_PIN_BYTES,
            actual: pin.len(),
        });
    }
    let min = min_code_points.max(MIN_PIN_CODE_POINTS);
    let actual = pin.chars().count();
    if actual < min {
        return Err(PinError::TooShort { min, actual });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_padded_round_trips() {
        let padded = Pin::new("päss😀").map(|p| p.padded());
        let back = padded.and_then(|p| Pin::from_padded(&*p, 4));
        assert_eq!(back.map(|p| p.as_str().to_owned()), Ok("päss😀".to_owned()));
    }

    #[test]
    fn from_padded_rejects_bad_input() {
        assert_eq!(
            Pin::from_padded(&[b'1'; 32], 4).err(),
            Some(PinError::PaddedPinLength { len: 32 })
        );
        // No terminating zero: 64 bytes of PIN is too long.
        assert_eq!(
            Pin::from_padded(&[b'1'; 64], 4).err(),
            Some(PinError::TooLong {
                max: 63,
                actual: 64
            })
        );
        let mut bad = [0u8; 64];
        bad[..4].copy_from_slice(&[0xff, 0xfe, 0x31, 0x32]);
        assert_eq!(Pin::from_padded(&bad, 4).err(), Some(PinError::NotUtf8));
        let mut short = [0u8; 64];
        short[..3].copy_from_slice(b"123");
        assert_eq!(
            Pin::from_padded(&short, 4).err(),
            Some(PinError::TooShort { min: 4, actual: 3 })
        );
    }

    #[test]
    fn hashes_match_is_exact() {
        let a = [7u8; 16];
        let mut b = a;
        assert!(Pin::hashes_match(&a, &b));
        b[15] ^= 1;
        assert!(!Pin::hashes_match(&a, &b));
    }

    #[test]
    fn nul_is_rejected() {
        assert_eq!(Pin::new("12\u{0}34").err(), Some(PinError::ContainsNul));
    }
}
