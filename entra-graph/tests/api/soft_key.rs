//! A minimal software authenticator for the tests: makes ES256 credentials with
//! packed (self or x5c) or none attestation over a given clientDataHash.

use entra_graph::auth::pem_block;
use entra_graph::webauthn::{MakeCredentialResult, FLAG_AT, FLAG_UP, FLAG_UV};
use fido_core::cbor::{self, Value};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey;
use rand_core::OsRng;
use sha2::{Digest, Sha256};

/// YubiKey 5 Series AAGUID.
pub const YK5: [u8; 16] = [
    0xcb, 0x69, 0x48, 0x1e, 0x8f, 0xf7, 0x40, 0x39, 0x93, 0xec, 0x0a, 0x27, 0x29, 0xa1, 0x54, 0xa8,
];
pub const YK5_STR: &str = "cb69481e-8ff7-4039-93ec-0a2729a154a8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attest {
    None,
    SelfPacked,
    X5c,
}

pub struct MakeArgs<'a> {
    pub rp_id: &'a str,
    pub flags: u8,
    pub attest: Attest,
    pub aaguid: [u8; 16],
    /// The credential id to use (random 32 bytes when `None`).
    pub cred_id: Option<Vec<u8>>,
}

impl Default for MakeArgs<'_> {
    fn default() -> Self {
        MakeArgs {
            rp_id: "login.microsoft.com",
            flags: FLAG_UP | FLAG_UV | FLAG_AT,
            attest: Attest::X5c,
            aaguid: YK5,
            cred_id: None,
        }
    }
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Makes a fresh credential; returns the result and the credential id.
pub fn make_credential(
    client_data_hash: &[u8; 32],
    args: &MakeArgs<'_>,
) -> (MakeCredentialResult, Vec<u8>) {
    let key = SigningKey::random(&mut OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    let cred_id = args.cred_id.clone().unwrap_or_else(|| {
        let mut id = vec![0u8; 32];
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut id);
        id
    });
    let cose = Value::map([
        (Value::from(1i64), Value::from(2i64)),
        (Value::from(3i64), Value::from(-7i64)),
        (Value::from(-1i64), Value::from(1i64)),
        (Value::from(-2i64), Value::from(point.x().unwrap().to_vec())),
        (Value::from(-3i64), Value::from(point.y().unwrap().to_vec())),
    ]);
    let mut auth_data = Sha256::digest(args.rp_id.as_bytes()).to_vec();
    auth_data.push(args.flags);
    auth_data.extend_from_slice(&1u32.to_be_bytes());
    auth_data.extend_from_slice(&args.aaguid);
    auth_data.extend_from_slice(&(cred_id.len() as u16).to_be_bytes());
    auth_data.extend_from_slice(&cred_id);
    auth_data.extend_from_slice(&cbor::encode(&cose));
    let mut signed = auth_data.clone();
    signed.extend_from_slice(client_data_hash);
    let (fmt, stmt) = match args.attest {
        Attest::None => ("none", Value::map::<Value>([])),
        Attest::SelfPacked => {
            let sig: Signature = key.sign(&signed);
            (
                "packed",
                Value::map([
                    (Value::from("alg"), Value::from(-7i64)),
                    (
                        Value::from("sig"),
                        Value::from(sig.to_der().as_bytes().to_vec()),
                    ),
                ]),
            )
        }
        Attest::X5c => {
            let att_key = SigningKey::from_pkcs8_pem(&fixture("attestation-key.pem")).unwrap();
            let cert = pem_block(&fixture("attestation-cert.pem"), "CERTIFICATE").unwrap();
            let sig: Signature = att_key.sign(&signed);
            (
                "packed",
                Value::map([
                    (Value::from("alg"), Value::from(-7i64)),
                    (
                        Value::from("sig"),
                        Value::from(sig.to_der().as_bytes().to_vec()),
                    ),
                    (Value::from("x5c"), Value::Array(vec![Value::from(cert)])),
                ]),
            )
        }
    };
    (
        MakeCredentialResult {
            auth_data,
            fmt: fmt.into(),
            att_stmt: cbor::encode(&stmt),
        },
        cred_id,
    )
}
