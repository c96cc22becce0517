//! AAGUIDs as text: the hyphenated 8-4-4-4-12 hex form FIDO MDS, Microsoft Graph and the
//! audit log use. One place for both directions, so every layer writes the same text.

/// Formats 16 AAGUID bytes as lower-case hex with dashes (8-4-4-4-12), the form Graph and
/// FIDO MDS use.
pub fn format_aaguid(a: &[u8; 16]) -> String {
    let h = base16ct::lower::encode_string(a);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Parses an AAGUID written as 36-character hex with dashes (either case); `None` for
/// anything else.
pub fn parse_aaguid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || text.len() != 36 {
        return None;
    }
    // base16ct: either case, and no sign characters (`from_str_radix` took "+a").
    let mut out = [0u8; 16];
    (base16ct::mixed::decode(&hex, &mut out).ok()?.len() == out.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let mut b = [0u8; 16];
        b[0] = 0xcb;
        b[15] = 0xa8;
        let text = format_aaguid(&b);
        assert_eq!(text, "cb000000-0000-0000-0000-0000000000a8");
        assert_eq!(parse_aaguid(&text), Some(b));
        assert_eq!(parse_aaguid(&text.to_uppercase()), Some(b));
        for bad in [
            "cb000000",
            "cb0000000000000000000000000000a8",
            "+b000000-0000-0000-0000-0000000000a8",
            "zz000000-0000-0000-0000-0000000000a8",
            "cb000000-0000-0000-0000-0000000000a8-",
        ] {
            assert_eq!(parse_aaguid(bad), None, "{bad}");
        }
    }
}
