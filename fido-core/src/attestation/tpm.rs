//! The `tpm` attestation statement format (WebAuthn §8.3): TPMS_ATTEST (`certInfo`)
//! and TPMT_PUBLIC (`pubArea`) parsing and the checks tying them to the credential.
//!
//! TPMs commonly sign with RS1 (RSASSA-PKCS1-v1_5 with SHA-1); WebAuthn still allows it
//! for this format, so a small SHA-1 lives here, used for nothing else.

use super::{
    cert_key, parse_cert, read_x5c, AttestationError, AttestationType, CertificatePolicy,
    OID_BASIC_CONSTRAINTS, OID_FIDO_AAGUID,
};
use crate::authdata::AttestedCredentialData;
use crate::cbor::MapRef;
use crate::cose::{CoseKey, ALG_ES256, ALG_PS256, ALG_RS256};
use crate::verify::{
    verify_signature, PublicKeyRef, SignatureAlgorithm, SignatureVerifier, VerifyError,
};
use der::asn1::{ObjectIdentifier, OctetString};
use der::Decode;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// COSE algorithm identifier RS1 (RSASSA-PKCS1-v1_5 with SHA-1).
pub const ALG_RS1: i64 = -65535;

const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
const TPM_ST_ATTEST_CERTIFY: u16 = 0x8017;
const TPM_ALG_RSA: u16 = 0x0001;
const TPM_ALG_ECC: u16 = 0x0023;
const TPM_ALG_SHA1: u16 = 0x0004;
const TPM_ALG_SHA256: u16 = 0x000b;
const TPM_ALG_SHA384: u16 = 0x000c;
const TPM_ALG_SHA512: u16 = 0x000d;
const TPM_ECC_NIST_P256: u16 = 0x0003;

const OID_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
const OID_EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const OID_TCG_KP_AIK_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.133.8.3");

/// Reads big-endian TPM structures, naming the field on truncation.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    structure: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8], structure: &'static str) -> Self {
        Cursor {
            bytes,
            pos: 0,
            structure,
        }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], AttestationError> {
        let out = self
            .pos
            .checked_add(n)
            .and_then(|end| self.bytes.get(self.pos..end))
            .ok_or(AttestationError::TpmMalformed {
                structure: self.structure,
                field,
            })?;
        self.pos += n;
        Ok(out)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, AttestationError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, AttestationError> {
        let b = self.take(4, field)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A TPM2B: 16-bit length then that many bytes.
    fn sized(&mut self, field: &'static str) -> Result<&'a [u8], AttestationError> {
        let n = usize::from(self.u16(field)?);
        self.take(n, field)
    }

    fn finish(&self) -> Result<(), AttestationError> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(AttestationError::TpmMalformed {
                structure: self.structure,
                field: "trailing bytes",
            })
        }
    }
}

/// The parts of TPMT_PUBLIC the checks need.
struct PubArea<'a> {
    name_alg: u16,
    key: TpmKey<'a>,
}

enum TpmKey<'a> {
    Rsa {
        exponent: u32,
        n: &'a [u8],
    },
    Ecc {
        curve: u16,
        x: &'a [u8],
        y: &'a [u8],
    },
}

fn parse_pub_area(bytes: &[u8]) -> Result<PubArea<'_>, AttestationError> {
    let mut c = Cursor::new(bytes, "pubArea");
    let kind = c.u16("type")?;
    let name_alg = c.u16("nameAlg")?;
    c.u32("objectAttributes")?;
    c.sized("authPolicy")?;
    let key = match kind {
        TPM_ALG_RSA => {
            c.u16("parameters.symmetric")?;
            c.u16("parameters.scheme")?;
            c.u16("parameters.keyBits")?;
            let exponent = c.u32("parameters.exponent")?;
            let n = c.sized("unique")?;
            TpmKey::Rsa { exponent, n }
        }
        TPM_ALG_ECC => {
            c.u16("parameters.symmetric")?;
            c.u16("parameters.scheme")?;
            let curve = c.u16("parameters.curveID")?;
            c.u16("parameters.kdf")?;
            let x = c.sized("unique.x")?;
            let y = c.sized("unique.y")?;
            TpmKey::Ecc { curve, x, y }
        }
        _ => {
            return Err(AttestationError::TpmMalformed {
                structure: "pubArea",
                field: "type (neither RSA nor ECC)",
            })
        }
    };
    c.finish()?;
    Ok(PubArea { name_alg, key })
}

/// The parts of TPMS_ATTEST (certify) the checks need.
struct CertInfo<'a> {
    extra_data: &'a [u8],
    attested_name: &'a [u8],
}

fn parse_cert_info(bytes: &[u8]) -> Result<CertInfo<'_>, AttestationError> {
    let mut c = Cursor::new(bytes, "certInfo");
    if c.u32("magic")? != TPM_GENERATED_VALUE {
        return Err(AttestationError::TpmCheckFailed(
            "certInfo.magic is not TPM_GENERATED_VALUE",
        ));
    }
    if c.u16("type")? != TPM_ST_ATTEST_CERTIFY {
        return Err(AttestationError::TpmCheckFailed(
            "certInfo.type is not TPM_ST_ATTEST_CERTIFY",
        ));
    }
    c.sized("qualifiedSigner")?;
    let extra_data = c.sized("extraData")?;
    c.take(17, "clockInfo")?;
    c.take(8, "firmwareVersion")?;
    let attested_name = c.sized("attested.name")?;
    c.sized("attested.qualifiedName")?;
    c.finish()?;
    Ok(CertInfo {
        extra_data,
        attested_name,
    })
}

fn tpm_hash(alg: u16, data: &[u8]) -> Option<Vec<u8>> {
    Some(match alg {
        TPM_ALG_SHA1 => sha1(data).to_vec(),
        TPM_ALG_SHA256 => Sha256::digest(data).to_vec(),
        TPM_ALG_SHA384 => Sha384::digest(data).to_vec(),
        TPM_ALG_SHA512 => Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

fn key_matches(pub_area: &PubArea<'_>, key: &CoseKey) -> bool {
    match (&pub_area.key, key) {
        (TpmKey::Ecc { curve, x, y }, CoseKey::Ec2 { x: kx, y: ky, .. }) => {
            *curve == TPM_ECC_NIST_P256 && x == kx && y == ky
        }
        (TpmKey::Rsa { exponent, n }, CoseKey::Rsa { n: kn, e: ke, .. }) => {
            let exponent = if *exponent == 0 { 65537 } else { *exponent };
            let ke = strip_zeros(ke);
            let e_bytes = exponent.to_be_bytes();
            strip_zeros(n) == strip_zeros(kn) && strip_zeros(&e_bytes) == ke
        }
        _ => false,
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

/// Verifies a `tpm` statement; see WebAuthn §8.3 "Verification procedure".
pub(super) fn verify(
    stmt: MapRef<'_>,
    auth_data: &[u8],
    client_data_hash: &[u8; 32],
    acd: &AttestedCredentialData,
    policy: CertificatePolicy,
    verifier: &dyn SignatureVerifier,
) -> Result<AttestationType, AttestationError> {
    if stmt.get_text("ecdaaKeyId").is_some() {
        return Err(AttestationError::EcdaaNotSupported);
    }
    let ver = stmt
        .require_text("ver", "attStmt.ver")?
        .as_text("attStmt.ver")?;
    if ver != "2.0" {
        return Err(AttestationError::TpmCheckFailed(
            "attStmt.ver is not \"2.0\"",
        ));
    }
    let alg = stmt
        .require_text("alg", "attStmt.alg")?
        .as_i64("attStmt.alg")?;
    let sig = stmt
        .require_text("sig", "attStmt.sig")?
        .as_bytes("attStmt.sig")?;
    let cert_info_bytes = stmt
        .require_text("certInfo", "attStmt.certInfo")?
        .as_bytes("attStmt.certInfo")?;
    let pub_area_bytes = stmt
        .require_text("pubArea", "attStmt.pubArea")?
        .as_bytes("attStmt.pubArea")?;
    let chain = read_x5c(stmt.require_text("x5c", "attStmt.x5c")?)?;

    let pub_area = parse_pub_area(pub_area_bytes)?;
    if !key_matches(&pub_area, acd.public_key()) {
        return Err(AttestationError::TpmCheckFailed(
            "pubArea key differs from the credential public key",
        ));
    }
    let cert_info = parse_cert_info(cert_info_bytes)?;
    let pub_area_digest = tpm_hash(pub_area.name_alg, pub_area_bytes).ok_or(
        AttestationError::TpmCheckFailed("pubArea.nameAlg is not a supported hash"),
    )?;
    let mut name = pub_area.name_alg.to_be_bytes().to_vec();
    name.extend_from_slice(&pub_area_digest);
    if cert_info.attested_name != name.as_slice() {
        return Err(AttestationError::TpmCheckFailed(
            "certInfo.attested.name is not the name of pubArea",
        ));
    }

    let leaf_der = chain
        .first()
        .ok_or(AttestationError::BadCertificateCount { count: 0 })?;
    let leaf = parse_cert(leaf_der, 0)?;
    if alg == ALG_RS1 {
        verify_rs1(verifier, &leaf, cert_info_bytes, sig)?;
    } else {
        let key = cert_key(&leaf, alg, 0)?;
        key.verify_using(verifier, cert_info_bytes, sig)
            .map_err(AttestationError::Signature)?;
    }
    check_aik_leaf(&leaf, acd.aaguid(), policy)?;

    let signed = super::signed_data(auth_data, client_data_hash);
    let expected_extra = match alg {
        ALG_RS1 => sha1(&signed).to_vec(),
        ALG_ES256 | ALG_RS256 | ALG_PS256 => Sha256::digest(&signed).to_vec(),
        other => {
            return Err(AttestationError::Signature(
                crate::cose::CoseError::UnsupportedAlgorithm(other),
            ))
        }
    };
    if cert_info.extra_data != expected_extra.as_slice() {
        return Err(AttestationError::TpmCheckFailed(
            "certInfo.extraData is not the hash of authData || clientDataHash",
        ));
    }
    Ok(AttestationType::BasicOrAttCa { chain })
}

fn verify_rs1(
    verifier: &dyn SignatureVerifier,
    cert: &x509_cert::Certificate,
    message: &[u8],
    sig: &[u8],
) -> Result<(), AttestationError> {
    // Reuse the SPKI parsing; RS256 only labels the key here.
    let CoseKey::Rsa { n, e, .. } = cert_key(cert, ALG_RS256, 0)? else {
        return Err(AttestationError::Certificate {
            index: 0,
            reason: "RS1 needs an RSA key".into(),
        });
    };
    let key = PublicKeyRef::Rsa { n: &n, e: &e };
    verify_signature(verifier, SignatureAlgorithm::Rs1, key, message, sig).map_err(
        |err| match err {
            VerifyError::InvalidKey(why) => AttestationError::Certificate {
                index: 0,
                reason: format!("RSA key: {why}"),
            },
            other => AttestationError::Signature(other.into()),
        },
    )
}

/// WebAuthn §8.3.1 AIK certificate requirements.
fn check_aik_leaf(
    cert: &x509_cert::Certificate,
    aaguid: [u8; 16],
    policy: CertificatePolicy,
) -> Result<(), AttestationError> {
    let tbs = &cert.tbs_certificate;
    let extensions = tbs.extensions.as_deref().unwrap_or_default();
    let find = |oid| extensions.iter().find(|e| e.extn_id == oid);
    if let Some(ext) = find(OID_FIDO_AAGUID) {
        let inner = OctetString::from_der(ext.extn_value.as_bytes()).map_err(|_| {
            AttestationError::CertificateRequirement(
                "AAGUID extension is not an OCTET STRING".into(),
            )
        })?;
        let cert_aaguid = <[u8; 16]>::try_from(inner.as_bytes()).map_err(|_| {
            AttestationError::CertificateRequirement("AAGUID extension is not 16 bytes".into())
        })?;
        if cert_aaguid != aaguid {
            return Err(AttestationError::AaguidMismatch {
                certificate: cert_aaguid,
                auth_data: aaguid,
            });
        }
    }
    if policy == CertificatePolicy::SignatureOnly {
        return Ok(());
    }
    let fail = |r: &str| Err(AttestationError::CertificateRequirement(r.into()));
    if tbs.version != x509_cert::Version::V3 {
        return fail("AIK certificate is not X.509 V3");
    }
    if !tbs.subject.0.is_empty() {
        return fail("AIK certificate subject must be empty");
    }
    if find(OID_SUBJECT_ALT_NAME).is_none() {
        return fail("AIK certificate has no subjectAltName");
    }
    let eku = match find(OID_EXT_KEY_USAGE) {
        Some(ext) => x509_cert::ext::pkix::ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
            .map_err(|_| {
                AttestationError::CertificateRequirement("malformed extendedKeyUsage".into())
            })?,
        None => return fail("AIK certificate has no extendedKeyUsage"),
    };
    if !eku.0.contains(&OID_TCG_KP_AIK_CERTIFICATE) {
        return fail("extendedKeyUsage lacks tcg-kp-AIKCertificate (2.23.133.8.3)");
    }
    if let Some(ext) = find(OID_BASIC_CONSTRAINTS) {
        let bc = x509_cert::ext::pkix::BasicConstraints::from_der(ext.extn_value.as_bytes())
            .map_err(|_| {
                AttestationError::CertificateRequirement("malformed basicConstraints".into())
            })?;
        if bc.ca {
            return fail("basicConstraints CA must be false");
        }
    }
    Ok(())
}

/// SHA-1 (FIPS 180-4), for RS1 TPM attestation and TPM names only.
pub(crate) fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xefcd_ab89,
        0x98ba_dcfe,
        0x1032_5476,
        0xc3d2_e1f0,
    ];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut padded = data.to_vec();
    padded.push(0x80);
    while padded.len() % 64 != 56 {
        padded.push(0);
    }
    padded.extend_from_slice(&bit_len.to_be_bytes());
    for block in padded.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5a82_7999),
                20..=39 => (b ^ c ^ d, 0x6ed9_eba1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8f1b_bcdc),
                _ => (b ^ c ^ d, 0xca62_c1d6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, v) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&v.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        base16ct::mixed::decode_vec(s).expect("hex in test data")
    }

    #[test]
    fn sha1_fips_vectors() {
        assert_eq!(
            sha1(b"abc").to_vec(),
            hex("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(
            sha1(b"").to_vec(),
            hex("da39a3ee5e6b4b0d3255bfef95601890afd80709")
        );
        assert_eq!(
            sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").to_vec(),
            hex("84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        );
        assert_eq!(
            sha1(&[b'a'; 1_000_000]).to_vec(),
            hex("34aa973cd4c4daa4f61eeb2bdbad27316534016f")
        );
    }

    #[test]
    fn truncated_structures_are_typed_errors() {
        assert!(matches!(
            parse_pub_area(&[0x00, 0x23, 0x00]),
            Err(AttestationError::TpmMalformed {
                structure: "pubArea",
                field: "nameAlg"
            })
        ));
        assert!(matches!(
            parse_cert_info(&[0xff, 0x54, 0x43, 0x47, 0x80, 0x17, 0x00, 0x05, 0x00]),
            Err(AttestationError::TpmMalformed {
                structure: "certInfo",
                field: "qualifiedSigner"
            })
        ));
        assert_eq!(
            parse_cert_info(&[0, 0, 0, 0, 0, 0]).err(),
            Some(AttestationError::TpmCheckFailed(
                "certInfo.magic is not TPM_GENERATED_VALUE"
            ))
        );
    }
}
