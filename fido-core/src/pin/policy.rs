//! What PINs a key accepts, and transport PINs that fit: the minimum (`minPINLength`),
//! the maximum (CTAP 2.3 `maxPINLength`, else 63 bytes) and, when the key declares a
//! PIN complexity policy (CTAP 2.3 `pinComplexityPolicy`, e.g. Token2 PIN+ keys), the
//! common rules such keys enforce: no digit repeated more than 3 times, no run of 4
//! consecutive ascending or descending digits, not a palindrome.

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::{PinError, MAX_PIN_BYTES, MIN_PIN_CODE_POINTS};
use crate::commands::AuthenticatorInfo;

/// The PIN rules a key declares in getInfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinPolicy {
    /// Fewest code points (`minPINLength`, at least 4).
    pub min_len: usize,
    /// Most code points (`maxPINLength`, at most 63).
    pub max_len: usize,
    /// A complexity policy is in force (`pinComplexityPolicy`).
    pub complexity: bool,
}

impl PinPolicy {
    /// The policy of the key that sent `info`.
    pub fn from_info(info: &AuthenticatorInfo) -> Self {
        let clamp = |n: u64| {
            usize::try_from(n)
                .unwrap_or(MAX_PIN_BYTES)
                .min(MAX_PIN_BYTES)
        };
        let min_len = info
            .min_pin_length
            .map_or(MIN_PIN_CODE_POINTS, clamp)
            .max(MIN_PIN_CODE_POINTS);
        PinPolicy {
            min_len,
            max_len: info
                .max_pin_length
                .map_or(MAX_PIN_BYTES, clamp)
                .max(min_len),
            complexity: info.pin_complexity_policy == Some(true),
        }
    }

    /// True if `pin` (digits or not) meets the complexity rules above.
    pub fn is_complex_enough(pin: &str) -> bool {
        let c: Vec<char> = pin.chars().collect();
        if c.len() > 1 && c.iter().eq(c.iter().rev()) {
            return false;
        }
        if c.iter().any(|x| c.iter().filter(|y| *y == x).count() > 3) {
            return false;
        }
        let d: Vec<i32> = c
            .iter()
            .filter_map(|x| x.to_digit(10))
            .map(|x| x as i32)
            .collect();
        if d.len() == c.len() {
            for w in d.windows(4) {
                let step = w[1] - w[0];
                if (step == 1 || step == -1) && w.windows(2).all(|p| p[1] - p[0] == step) {
                    return false;
                }
            }
        }
        true
    }

    /// A random all-digit transport PIN of `wanted` digits (clamped to the key's
    /// minimum and maximum) that meets the complexity rules whether or not the key
    /// enforces them, so the same PIN works on any key.
    pub fn generate(
        &self,
        wanted: usize,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Zeroizing<String>, PinError> {
        let len = wanted.clamp(self.min_len, self.max_len);
        for _ in 0..64 {
            let mut pin = Zeroizing::new(String::with_capacity(len));
            while pin.len() < len {
                let mut b = [0u8; 1];
                rng.try_fill_bytes(&mut b).map_err(|_| PinError::Rng)?;
                // Rejection sampling: 250 is the largest multiple of 10 below 256.
                if b[0] < 250 {
                    pin.push(char::from(b'0' + b[0] % 10));
                }
            }
            if Self::is_complex_enough(&pin) {
                return Ok(pin);
            }
        }
        Err(PinError::Rng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn complexity_rules() {
        assert!(!PinPolicy::is_complex_enough("12344321")); // palindrome
        assert!(!PinPolicy::is_complex_enough("19111125")); // five 1s
        assert!(!PinPolicy::is_complex_enough("90123457")); // 0123 ascending
        assert!(!PinPolicy::is_complex_enough("86543109")); // 6543 descending
        assert!(PinPolicy::is_complex_enough("48213597"));
        assert!(PinPolicy::is_complex_enough("4821"));
    }

    #[test]
    fn policy_from_info_and_generation_fit_the_key() {
        let info = AuthenticatorInfo {
            min_pin_length: Some(6),
            max_pin_length: Some(8),
            pin_complexity_policy: Some(true),
            ..Default::default()
        };
        let p = PinPolicy::from_info(&info);
        assert_eq!(
            p,
            PinPolicy {
                min_len: 6,
                max_len: 8,
                complexity: true
            }
        );
        for _ in 0..200 {
            let pin = p.generate(16, &mut OsRng).unwrap();
            assert_eq!(pin.len(), 8, "clamped to maxPINLength");
            assert!(pin.chars().all(|c| c.is_ascii_digit()));
            assert!(PinPolicy::is_complex_enough(&pin), "{}", pin.as_str());
        }
        let default = PinPolicy::from_info(&AuthenticatorInfo::default());
        assert_eq!((default.min_len, default.max_len), (4, 63));
        assert_eq!(default.generate(16, &mut OsRng).unwrap().len(), 16);
        // A minimum above the wanted length wins.
        let long = PinPolicy::from_info(&AuthenticatorInfo {
            min_pin_length: Some(20),
            ..Default::default()
        });
        assert_eq!(long.generate(16, &mut OsRng).unwrap().len(), 20);
    }
}
