//! The self-signed `packed` attestation certificate (WebAuthn §8.2.1 requirements:
//! X.509 v3, subject OU "Authenticator Attestation", CA false, AAGUID extension).

use core::str::FromStr;
use core::time::Duration;

use der::asn1::{Any, BitString, ObjectIdentifier, OctetString, UtcTime};
use der::oid::AssociatedOid;
use der::Encode;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_FIDO_AAGUID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.45724.1.1.4");

/// Subject (and issuer) of the certificate.
const SUBJECT: &str =
    "CN=keysmith softkey attestation,OU=Authenticator Attestation,O=keysmith,C=US";
/// 2024-01-01T00:00:00Z.
const NOT_BEFORE: u64 = 1_704_067_200;
/// 2049-12-31T23:59:59Z (the last instant UTCTime can express).
const NOT_AFTER: u64 = 2_524_607_999;

/// Builds the DER certificate for `key` and `aaguid`. Deterministic: the same inputs
/// give the same certificate (ECDSA signatures are RFC 6979).
pub(crate) fn attestation_certificate(
    key: &SigningKey,
    aaguid: [u8; 16],
) -> Result<Vec<u8>, String> {
    let err = |what: &str, e: der::Error| format!("attestation certificate {what}: {e}");
    let point = key.verifying_key().to_encoded_point(false);
    let mut serial: [u8; 16] = {
        let d: [u8; 32] = Sha256::digest(point.as_bytes()).into();
        let mut s = [0u8; 16];
        s.copy_from_slice(d.get(..16).unwrap_or(&[1u8; 16]));
        s
    };
    // Positive and without a leading zero byte.
    serial[0] = (serial[0] & 0x7f) | 0x01;
    let name = Name::from_str(SUBJECT).map_err(|e| err("subject", e))?;
    let time = |secs: u64| {
        UtcTime::from_unix_duration(Duration::from_secs(secs))
            .map(Time::UtcTime)
            .map_err(|e| err("validity", e))
    };
    let basic = BasicConstraints {
        ca: false,
        path_len_constraint: None,
    };
    let aaguid_der = OctetString::new(aaguid.to_vec())
        .and_then(|o| o.to_der())
        .map_err(|e| err("aaguid", e))?;
    let extensions = vec![
        Extension {
            extn_id: BasicConstraints::OID,
            critical: true,
            extn_value: OctetString::new(basic.to_der().map_err(|e| err("basicConstraints", e))?)
                .map_err(|e| err("basicConstraints", e))?,
        },
        Extension {
            extn_id: OID_FIDO_AAGUID,
            critical: false,
            extn_value: OctetString::new(aaguid_der).map_err(|e| err("aaguid", e))?,
        },
    ];
    let signature_algorithm = AlgorithmIdentifierOwned {
        oid: OID_ECDSA_SHA256,
        parameters: None,
    };
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(&serial).map_err(|e| err("serial", e))?,
        signature: signature_algorithm.clone(),
        issuer: name.clone(),
        validity: Validity {
            not_before: time(NOT_BEFORE)?,
            not_after: time(NOT_AFTER)?,
        },
        subject: name,
        subject_public_key_info: SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: OID_EC_PUBLIC_KEY,
                parameters: Some(Any::encode_from(&OID_PRIME256V1).map_err(|e| err("spki", e))?),
            },
            subject_public_key: BitString::from_bytes(point.as_bytes())
                .map_err(|e| err("spki", e))?,
        },
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der().map_err(|e| err("tbsCertificate", e))?;
    let sig: Signature = key.sign(&tbs_der);
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm,
        signature: BitString::from_bytes(sig.to_der().as_bytes())
            .map_err(|e| err("signature", e))?,
    };
    cert.to_der().map_err(|e| err("encoding", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;

    #[test]
    fn certificate_has_the_packed_leaf_properties() {
        let key = SigningKey::from_bytes(&[7u8; 32].into()).expect("valid scalar");
        let der = attestation_certificate(&key, [9; 16]).expect("certificate");
        let again = attestation_certificate(&key, [9; 16]).expect("certificate");
        assert_eq!(der, again, "deterministic");
        let cert = Certificate::from_der(&der).expect("parses");
        assert_eq!(cert.tbs_certificate.version, Version::V3);
        let subject = cert.tbs_certificate.subject.to_string();
        assert!(
            subject.contains("OU=Authenticator Attestation"),
            "{subject}"
        );
        let exts = cert.tbs_certificate.extensions.expect("extensions");
        assert!(exts
            .iter()
            .any(|e| e.extn_id == OID_FIDO_AAGUID && !e.critical));
    }
}
