//! The software authenticator, driven with raw CTAP messages built by fido-core's
//! command and PIN builders: the shared harness here, one module per CTAP area.

use std::time::Duration;

use fido_core::attestation::{verify_assertion, AttestationObject, AttestationType};
use fido_core::authdata::AuthenticatorData;
use fido_core::commands::*;
use fido_core::cose::{CoseKey, ALG_ES256};
use fido_core::pin::{
    change_pin, pin_token_request, set_pin, AuthMessage, Permissions, Pin, PinUvAuthProtocol,
    PinUvAuthToken,
};
use fido_core::{CtapStatus, Error};
use fido_transport::softkey::*;
use fido_transport::{Progress, Transport};

mod bio;
mod card;
mod client_pin;
mod config;
mod cred_mgmt;
mod credentials;
mod extensions;
mod large_blobs;
mod malformed;
mod persistence;
mod reset;
mod transport;

const AAGUID: [u8; 16] = *b"0123456789abcdef";
const RP: &str = "login.microsoft.com";

struct Harness {
    auth: SoftAuthenticator,
    clock: ManualClock,
    rng: SeededRng,
}

fn harness_with(config: SoftConfig) -> Harness {
    let clock = ManualClock::new();
    let auth = SoftAuthenticator::with_rng_and_clock(
        SoftConfig {
            aaguid: AAGUID,
            ..config
        },
        SeededRng::new(1),
        clock.clone(),
    )
    .expect("authenticator");
    Harness {
        auth,
        clock,
        rng: SeededRng::new(2),
    }
}

fn harness() -> Harness {
    harness_with(SoftConfig::default())
}

fn cdh(n: u8) -> [u8; 32] {
    [n; 32]
}

fn user(id: u8, name: &str) -> UserEntity {
    UserEntity {
        id: vec![id; 16],
        name: Some(name.to_owned()),
        display_name: Some(format!("{name} display")),
    }
}

fn rp(id: &str) -> RpEntity {
    RpEntity {
        id: id.to_owned(),
        name: Some("RP".to_owned()),
    }
}

fn protocol(n: u8) -> PinUvAuthProtocol {
    if n == 1 {
        PinUvAuthProtocol::One
    } else {
        PinUvAuthProtocol::Two
    }
}

impl Harness {
    fn raw(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.auth.handle(bytes, &mut NoPresence)
    }

    fn send<C: Command>(&mut self, cmd: &C) -> Result<C::Response, Error> {
        let reply = self.raw(&encode_request(cmd));
        decode_response::<C>(&reply)
    }

    fn status<C: Command>(&mut self, cmd: &C) -> Option<CtapStatus> {
        match self.send(cmd) {
            Ok(_) => None,
            Err(Error::Ctap(s)) => Some(s),
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }

    fn info(&mut self) -> AuthenticatorInfo {
        self.send(&GetInfo).expect("getInfo")
    }

    fn key_agreement(&mut self, p: u8) -> CoseKey {
        self.send(&ClientPin::GetKeyAgreement {
            pin_uv_auth_protocol: p,
        })
        .expect("getKeyAgreement")
        .key_agreement
        .expect("key agreement present")
    }

    fn set_pin(&mut self, p: u8, pin: &str) -> Option<CtapStatus> {
        let peer = self.key_agreement(p);
        let params = set_pin(
            protocol(p),
            &peer,
            &Pin::new(pin).expect("pin"),
            &mut self.rng,
        )
        .expect("set_pin params");
        self.status(&ClientPin::SetPin {
            pin_uv_auth_protocol: p,
            key_agreement: params.key_agreement,
            new_pin_enc: params.new_pin_enc,
            pin_uv_auth_param: params.pin_uv_auth_param,
        })
    }

    fn change_pin(&mut self, p: u8, old: &str, new: &str) -> Option<CtapStatus> {
        let peer = self.key_agreement(p);
        let params = change_pin(
            protocol(p),
            &peer,
            &Pin::new(old).expect("pin"),
            &Pin::new(new).expect("pin"),
            &mut self.rng,
        )
        .expect("change_pin params");
        self.status(&ClientPin::ChangePin {
            pin_uv_auth_protocol: p,
            key_agreement: params.key_agreement,
            pin_hash_enc: params.pin_hash_enc,
            new_pin_enc: params.new_pin_enc,
            pin_uv_auth_param: params.pin_uv_auth_param,
        })
    }

    /// getPinUvAuthTokenUsingPinWithPermissions (p = 2 or 1), or getPinToken when
    /// `permissions` is None.
    fn token(
        &mut self,
        p: u8,
        pin: &str,
        permissions: Option<Permissions>,
        rp_id: Option<&str>,
    ) -> Result<PinUvAuthToken, CtapStatus> {
        let peer = self.key_agreement(p);
        let req = pin_token_request(
            protocol(p),
            &peer,
            &Pin::new(pin).expect("pin"),
            &mut self.rng,
        )
        .expect("token request");
        let cmd = match permissions {
            Some(perm) => ClientPin::GetPinUvAuthTokenUsingPinWithPermissions {
                pin_uv_auth_protocol: p,
                key_agreement: req.key_agreement.clone(),
                pin_hash_enc: req.pin_hash_enc.clone(),
                permissions: perm,
                rp_id: rp_id.map(str::to_owned),
            },
            None => ClientPin::GetPinToken {
                pin_uv_auth_protocol: p,
                key_agreement: req.key_agreement.clone(),
                pin_hash_enc: req.pin_hash_enc.clone(),
            },
        };
        let answer = match self.send(&cmd) {
            Ok(a) => a,
            Err(Error::Ctap(s)) => return Err(s),
            Err(e) => panic!("unexpected {e:?}"),
        };
        let enc = answer.pin_uv_auth_token.expect("token present");
        Ok(PinUvAuthToken::decrypt(
            protocol(p),
            &req.shared_secret,
            enc.expose(),
            permissions.unwrap_or(Permissions::MAKE_CREDENTIAL | Permissions::GET_ASSERTION),
            rp_id.map(str::to_owned),
        )
        .expect("token decrypts"))
    }

    fn retries(&mut self) -> u32 {
        self.send(&ClientPin::GetPinRetries {
            pin_uv_auth_protocol: Some(2),
        })
        .expect("retries")
        .pin_retries
        .expect("pinRetries present")
    }

    fn make_credential(
        &mut self,
        rp_id: &str,
        u: UserEntity,
        rk: bool,
        token: Option<&PinUvAuthToken>,
    ) -> Result<MakeCredentialResponse, Error> {
        let mut mc = MakeCredential::new(
            cdh(1),
            rp(rp_id),
            u,
            vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
        );
        mc.options.rk = Some(rk);
        if let Some(t) = token {
            mc.pin_uv_auth_param = Some(t.authenticate_message(&AuthMessage::MakeCredential {
                client_data_hash: &mc.client_data_hash,
            }));
            mc.pin_uv_auth_protocol = Some(t.protocol().id());
        }
        self.send(&mc)
    }

    fn get_assertion(
        &mut self,
        rp_id: &str,
        allow: Option<Vec<Vec<u8>>>,
        token: Option<&PinUvAuthToken>,
    ) -> Result<GetAssertionResponse, Error> {
        let mut ga = GetAssertion::new(rp_id, cdh(2));
        ga.allow_list = allow.map(|l| {
            l.into_iter()
                .map(CredentialDescriptor::public_key)
                .collect()
        });
        if let Some(t) = token {
            ga.pin_uv_auth_param = Some(t.authenticate_message(&AuthMessage::GetAssertion {
                client_data_hash: &ga.client_data_hash,
            }));
            ga.pin_uv_auth_protocol = Some(t.protocol().id());
        }
        self.send(&ga)
    }
}

fn credential_of(mc: &MakeCredentialResponse) -> (Vec<u8>, CoseKey) {
    let ad = AuthenticatorData::parse(&mc.auth_data).expect("authData");
    let acd = ad.attested_credential().expect("attested credential");
    (acd.credential_id().to_vec(), acd.public_key().clone())
}

fn ctap(e: Result<impl std::fmt::Debug, Error>) -> CtapStatus {
    match e {
        Err(Error::Ctap(s)) => s,
        other => panic!("expected a CTAP status, got {other:?}"),
    }
}
