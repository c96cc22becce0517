//! Step 8 of `keysmith demo`: self-service issuance. The holder authenticates at the
//! (emulated) Entra identity platform with OpenID Connect; the engine checks the ID token
//! against the issuer's published keys, issuer (the directory's tenant), audience and
//! expiry, the nonce of the sign-in it started, a recent MFA sign-in and single use, and
//! issues a blank key to the token's subject, activated at once with the PIN the holder
//! chooses.

use std::time::Duration;

use entra_graph::emulator::{Emulator, HolderTokenOptions};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use lifecycle::engine::{Engine, EngineError};
use lifecycle::template::{KeyTransport, TemplateSet};

/// The self-service user of the demo.
pub(crate) const SELF_USER: &str = "adelev@contoso.onmicrosoft.com";
/// The PIN the holder chooses (a demo value, shown on purpose).
const SELF_PIN: &str = "adele-pin-1357";
/// The client id of the CMS's self-service portal (the ID token's audience).
const PORTAL_CLIENT_ID: &str = "keysmith-self-service-portal";

fn template(emulator: &Emulator) -> String {
    format!(
        r#"
[passkey.entra]
idp = {{ connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }}
display_name = "{{displayName}} key {{serial}}"
truncate_display_name = true
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "demo-self-service"
passkey_templates = ["entra"]
user_assignment = {{ directory = "contoso-entra" }}

[credential.fido2]
always_uv = true
min_pin_length = 8

[credential.self_service]
pin_set_allowed = true
self_issuance_allowed = true
issue_by_user = true

[credential.self_service.oidc]
issuer = "{issuer}"
audience = "{PORTAL_CLIENT_ID}"
jwks_url = "{jwks}"
"#,
        issuer = emulator.oidc_issuer(),
        jwks = emulator.jwks_url(),
    )
}

/// Runs the step; returns the self-issued key's id.
pub(crate) fn run(engine: &Engine, emulator: &Emulator, now: u64) -> Result<String, String> {
    let templates = TemplateSet::from_toml_str(&template(emulator))
        .map_err(|e| format!("self-service template: {e}"))?;
    engine
        .add_template(templates)
        .map_err(|e| format!("self-service template: {e}"))?;
    let soft = SoftAuthenticator::new(SoftConfig::default())
        .map_err(|e| format!("second software key: {e}"))?;
    let mut key = Authenticator::new(SoftTransport::new(soft));
    let serial = "SELF0001";
    println!("    a blank key (serial {serial}) is handed to {SELF_USER}");

    // The portal starts the sign-in: a one-time nonce for the authorization request.
    let start = engine
        .self_service_begin(now)
        .map_err(|e| format!("self-service sign-in: {e}"))?;
    let signed_in = |nonce: Option<&str>| {
        let mut opts = HolderTokenOptions::new(SELF_USER, PORTAL_CLIENT_ID);
        opts.lifetime = Duration::from_secs(600);
        opts.nonce = nonce.map(str::to_owned);
        opts
    };
    let issue = |token: &str, key: &mut Authenticator<SoftTransport>| {
        engine.self_issue(
            token,
            &start.nonce,
            "demo-self-service",
            serial,
            KeyTransport::Software,
            SELF_PIN,
            key,
            now,
        )
    };

    // A token signed by a key the issuer never published is refused before anything
    // happens to the key; so is a genuine token from a sign-in this portal did not start.
    let claims = emulator
        .holder_claims_json_with(&signed_in(Some(&start.nonce)))
        .map_err(|e| format!("claims: {e}"))?;
    let forged = emulator
        .sign_unpublished(&claims)
        .map_err(|e| format!("forged token: {e}"))?;
    let unsolicited = emulator
        .holder_token_with(&signed_in(None))
        .map_err(|e| format!("ID token: {e}"))?;
    for (what, token) in [
        ("a forged ID token", &forged),
        ("an ID token without the sign-in's nonce", &unsolicited),
    ] {
        match issue(token, &mut key) {
            Err(lifecycle::Error::Engine(e @ EngineError::SelfService(_))) => {
                println!("    {what} is refused ({}): {e}", e.reason());
            }
            Err(e) => return Err(format!("{what}: unexpected error: {e}")),
            Ok(_) => return Err(format!("{what} was accepted")),
        }
    }

    // The holder signs in at the identity platform (OIDC, with MFA) and the portal gets
    // their ID token carrying its nonce; the emulator issues it as Entra would.
    let token = emulator
        .holder_token_with(&signed_in(Some(&start.nonce)))
        .map_err(|e| format!("ID token: {e}"))?;
    println!(
        "    {SELF_USER} signs in with OIDC; ID token from {} checked against {}",
        emulator.oidc_issuer(),
        emulator.jwks_url()
    );
    let k = issue(&token, &mut key).map_err(|e| format!("self-issuance: {e}"))?;
    match issue(&token, &mut key) {
        Err(lifecycle::Error::Engine(e @ EngineError::SelfService(_))) => {
            println!(
                "    the same ID token again is refused ({}): {e}",
                e.reason()
            );
        }
        Err(e) => return Err(format!("replayed token: unexpected error: {e}")),
        Ok(_) => return Err("a replayed ID token was accepted".into()),
    }
    println!(
        "    key {} is {} for {}; the holder's own PIN is set",
        k.key_id,
        k.state,
        k.user_id.as_deref().unwrap_or("-")
    );
    for s in engine
        .sign_in(&k.key_id, SELF_PIN, &mut key)
        .map_err(|e| format!("sign-in with the self-issued key: {e}"))?
    {
        println!(
            "    sign-in verified: passkey {} (method {})",
            s.passkey_template, s.method_id
        );
    }
    Ok(k.key_id)
}
