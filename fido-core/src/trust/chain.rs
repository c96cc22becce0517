//! Certificate path validation, delegated to OpenSSL's `X509_verify_cert`.
//!
//! Not hand-rolled: OpenSSL builds and checks the path (signatures, validity at the
//! given time, CA basicConstraints and keyUsage of issuers, path length, critical
//! extensions it does not understand). `rustls-webpki` cannot be used for attestation
//! because it refuses the TPM AIK certificates of Windows Hello (critical
//! certificatePolicies and subjectAltName); OpenSSL accepts them, as `webauthn-rs` relies
//! on too. Trust anchors may be intermediates (`X509_V_FLAG_PARTIAL_CHAIN`): MDS lists
//! the certificate a vendor attests under, which is not always self-signed.

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509StoreContext, X509};

use super::TrustError;

/// Parses DER into an OpenSSL certificate; `what` names it in the error.
fn parse(der: &[u8], what: &'static str) -> Result<X509, TrustError> {
    X509::from_der(der).map_err(|e| TrustError::Certificate {
        what,
        reason: e.to_string(),
    })
}

/// Validates `chain` (leaf first, then intermediates in any order) up to one of
/// `anchors` at `now` (seconds since the Unix epoch). Returns `Err(ChainInvalid)` with
/// OpenSSL's reason when no path verifies.
pub(crate) fn verify_path(
    chain: &[Vec<u8>],
    anchors: &[Vec<u8>],
    now: u64,
) -> Result<(), TrustError> {
    let leaf_der = chain.first().ok_or(TrustError::ChainInvalid {
        reason: "no certificate".into(),
    })?;
    let leaf = parse(leaf_der, "leaf certificate")?;
    let ossl = |e: openssl::error::ErrorStack| TrustError::ChainInvalid {
        reason: e.to_string(),
    };
    let mut store = X509StoreBuilder::new().map_err(ossl)?;
    for der in anchors {
        store.add_cert(parse(der, "trust anchor")?).map_err(ossl)?;
    }
    let mut param = X509VerifyParam::new().map_err(ossl)?;
    param.set_time(now.try_into().map_err(|_| TrustError::ChainInvalid {
        reason: "time out of range".into(),
    })?);
    param
        .set_flags(X509VerifyFlags::PARTIAL_CHAIN | X509VerifyFlags::USE_CHECK_TIME)
        .map_err(ossl)?;
    store.set_param(&param).map_err(ossl)?;
    let store = store.build();
    let mut untrusted = Stack::new().map_err(ossl)?;
    for der in chain.iter().skip(1) {
        untrusted
            .push(parse(der, "intermediate certificate")?)
            .map_err(ossl)?;
    }
    let mut ctx = X509StoreContext::new().map_err(ossl)?;
    let outcome = ctx
        .init(&store, &leaf, &untrusted, |c| {
            let ok = c.verify_cert()?;
            Ok(if ok {
                Ok(())
            } else {
                Err(format!(
                    "{} (certificate at depth {})",
                    c.error().error_string(),
                    c.error_depth()
                ))
            })
        })
        .map_err(ossl)?;
    outcome.map_err(|reason| TrustError::ChainInvalid { reason })
}
