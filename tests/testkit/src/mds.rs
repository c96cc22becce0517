//! Test PKI made with OpenSSL: a FIDO MDS root and signer, MDS3 BLOBs (JWS, ES256 or
//! RS256) and attestation CAs and leaves. Everything is returned as bytes so the file can
//! also be included by crates the testkit depends on (`#[path]`), without type clashes.

use base64::Engine as _;
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509Builder, X509Extension, X509NameBuilder, X509};

/// 2024-01-01T00:00:00Z.
pub const NOT_BEFORE: i64 = 1_704_067_200;
/// 2049-12-31T00:00:00Z.
pub const NOT_AFTER: i64 = 2_524_521_600;

/// A certificate with its private key.
pub struct Cert {
    /// The certificate.
    pub cert: X509,
    /// Its private key.
    pub key: PKey<Private>,
}

/// What to put in a certificate.
pub struct Spec<'a> {
    /// Subject CN.
    pub cn: &'a str,
    /// Subject OU (attestation leaves need "Authenticator Attestation").
    pub ou: Option<&'a str>,
    /// basicConstraints CA.
    pub ca: bool,
    /// Validity, Unix seconds.
    pub not_before: i64,
    /// Validity, Unix seconds.
    pub not_after: i64,
    /// The id-fido-gen-ce-aaguid extension.
    pub aaguid: Option<[u8; 16]>,
    /// RSA-2048 instead of P-256.
    pub rsa: bool,
}

impl<'a> Spec<'a> {
    /// A CA certificate valid 2024–2049.
    pub fn ca(cn: &'a str) -> Self {
        Spec {
            cn,
            ou: None,
            ca: true,
            not_before: NOT_BEFORE,
            not_after: NOT_AFTER,
            aaguid: None,
            rsa: false,
        }
    }

    /// An end-entity certificate valid 2024–2049.
    pub fn leaf(cn: &'a str) -> Self {
        Spec {
            ca: false,
            ..Spec::ca(cn)
        }
    }

    /// A `packed` attestation leaf for `aaguid`.
    pub fn attestation(aaguid: [u8; 16]) -> Self {
        Spec {
            ou: Some("Authenticator Attestation"),
            aaguid: Some(aaguid),
            ..Spec::leaf("test authenticator attestation")
        }
    }
}

fn new_key(rsa: bool) -> PKey<Private> {
    if rsa {
        PKey::from_rsa(Rsa::generate(2048).expect("rsa")).expect("pkey")
    } else {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        PKey::from_ec_key(EcKey::generate(&group).expect("ec")).expect("pkey")
    }
}

static SERIAL: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

impl Cert {
    /// A self-signed certificate (a root when `spec.ca`).
    pub fn self_signed(spec: &Spec<'_>) -> Cert {
        let key = new_key(spec.rsa);
        let cert = build(spec, &key, None);
        Cert { cert, key }
    }

    /// A certificate for `spec` issued by `self`.
    pub fn issue(&self, spec: &Spec<'_>) -> Cert {
        let key = new_key(spec.rsa);
        let cert = build(spec, &key, Some(self));
        Cert { cert, key }
    }

    /// The certificate as DER.
    pub fn der(&self) -> Vec<u8> {
        self.cert.to_der().expect("der")
    }

    /// The certificate as PEM.
    pub fn pem(&self) -> Vec<u8> {
        self.cert.to_pem().expect("pem")
    }

    /// The P-256 private scalar (32 bytes), for signing with other libraries.
    pub fn p256_scalar(&self) -> [u8; 32] {
        let ec = self.key.ec_key().expect("an EC key");
        let v = ec.private_key().to_vec_padded(32).expect("32 bytes");
        v.try_into().expect("32 bytes")
    }
}

fn build(spec: &Spec<'_>, key: &PKey<Private>, issuer: Option<&Cert>) -> X509 {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_text("C", "US").expect("C");
    name.append_entry_by_text("O", "keysmith test").expect("O");
    if let Some(ou) = spec.ou {
        name.append_entry_by_text("OU", ou).expect("OU");
    }
    name.append_entry_by_text("CN", spec.cn).expect("CN");
    let name = name.build();
    let mut b = X509Builder::new().expect("builder");
    b.set_version(2).expect("v3");
    let serial =
        BigNum::from_u32(SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed)).expect("bn");
    b.set_serial_number(&Asn1Integer::from_bn(&serial).expect("serial"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    match issuer {
        Some(i) => b.set_issuer_name(i.cert.subject_name()).expect("issuer"),
        None => b.set_issuer_name(&name).expect("issuer"),
    }
    b.set_not_before(&Asn1Time::from_unix(spec.not_before).expect("time"))
        .expect("nb");
    b.set_not_after(&Asn1Time::from_unix(spec.not_after).expect("time"))
        .expect("na");
    b.set_pubkey(key).expect("pubkey");
    if spec.ca {
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
            .expect("bc");
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .expect("ku"),
        )
        .expect("ku");
    } else {
        b.append_extension(BasicConstraints::new().critical().build().expect("bc"))
            .expect("bc");
    }
    if let Some(aaguid) = spec.aaguid {
        let oid = Asn1Object::from_str("1.3.6.1.4.1.45724.1.1.4").expect("oid");
        let mut inner = vec![0x04, 0x10];
        inner.extend_from_slice(&aaguid);
        let value = Asn1OctetString::new_from_bytes(&inner).expect("octets");
        b.append_extension(X509Extension::new_from_der(&oid, false, &value).expect("ext"))
            .expect("ext");
    }
    let signer = issuer.map_or(key, |i| &i.key);
    b.sign(signer, MessageDigest::sha256()).expect("sign");
    b.build()
}

/// One model in a test BLOB.
pub struct Entry {
    /// Its AAGUID.
    pub aaguid: [u8; 16],
    /// `attestationRootCertificates` (DER).
    pub roots: Vec<Vec<u8>>,
    /// The latest status report, if any.
    pub status: Option<&'static str>,
}

impl Entry {
    /// A certified model with these roots.
    pub fn new(aaguid: [u8; 16], roots: Vec<Vec<u8>>) -> Self {
        Entry {
            aaguid,
            roots,
            status: Some("FIDO_CERTIFIED_L1"),
        }
    }
}

/// AAGUID as hex with dashes.
pub fn aaguid_text(a: &[u8; 16]) -> String {
    fido_core::aaguid::format_aaguid(a)
}

/// A test FIDO MDS: a root and a signer certificate under it.
pub struct Mds {
    /// The FIDO MDS root (what the operator configures as `mds_root`).
    pub root: Cert,
    /// The BLOB signer, issued by `root`.
    pub signer: Cert,
}

impl Mds {
    /// A new root and ES256 signer.
    pub fn new() -> Self {
        let root = Cert::self_signed(&Spec::ca("Test FIDO MDS Root"));
        let signer = root.issue(&Spec::leaf("mds.test"));
        Mds { root, signer }
    }

    /// A new root and RS256 signer.
    pub fn new_rsa() -> Self {
        let root = Cert::self_signed(&Spec {
            rsa: true,
            ..Spec::ca("Test FIDO MDS Root RSA")
        });
        let signer = root.issue(&Spec {
            rsa: true,
            ..Spec::leaf("mds-rsa.test")
        });
        Mds { root, signer }
    }

    /// A BLOB (the JWS text as bytes) listing `entries`, `nextUpdate` 2049-01-01.
    pub fn blob(&self, entries: &[Entry]) -> Vec<u8> {
        self.blob_with(entries, "2049-01-01")
    }

    /// A BLOB with the given `nextUpdate`.
    pub fn blob_with(&self, entries: &[Entry], next_update: &str) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let entries: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "aaguid": aaguid_text(&e.aaguid),
                    "metadataStatement": {
                        "description": "test authenticator",
                        "aaguid": aaguid_text(&e.aaguid),
                        "attestationRootCertificates":
                            e.roots.iter().map(|r| b64.encode(r)).collect::<Vec<_>>(),
                    },
                    "statusReports": e.status.map(|s| vec![serde_json::json!({
                        "status": s, "effectiveDate": "2024-01-01"
                    })]).unwrap_or_default(),
                    "timeOfLastStatusChange": "2024-01-01",
                })
            })
            .collect();
        let payload = serde_json::json!({
            "legalHeader": "test",
            "no": 7,
            "nextUpdate": next_update,
            "entries": entries,
        });
        let rsa = self.signer.key.rsa().is_ok();
        let mut header = jsonwebtoken::Header::new(if rsa {
            jsonwebtoken::Algorithm::RS256
        } else {
            jsonwebtoken::Algorithm::ES256
        });
        header.x5c = Some(vec![b64.encode(self.signer.der())]);
        let key = if rsa {
            let der = self.signer.key.rsa().expect("rsa").private_key_to_der();
            jsonwebtoken::EncodingKey::from_rsa_der(&der.expect("pkcs1"))
        } else {
            let der = self.signer.key.private_key_to_pkcs8().expect("pkcs8");
            jsonwebtoken::EncodingKey::from_ec_der(&der)
        };
        jsonwebtoken::encode(&header, &payload, &key)
            .expect("jws")
            .into_bytes()
    }
}

impl Default for Mds {
    fn default() -> Self {
        Mds::new()
    }
}
