//! Contract tests: every client operation against the emulator, with every fault kind.
//! One module per concern; the shared imports and fixture reader here.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use entra_graph::auth::{AccessToken, AssertionAlg, CertificateCredential, Credential, Secret};
use entra_graph::emulator::{
    AppRegistration, Emulator, EmulatorConfig, Fault, FaultRule, ThrottleConfig,
};
use entra_graph::ids::{decode_foreign, decode_lenient, encode_b64url};
use entra_graph::policy::PreflightError;
use entra_graph::wire::{
    AttestationEnforcement, AttestationLevel, EnforcementType, KeyRestrictions, MethodState,
    PasskeyProfile, PasskeyType, PolicyTarget,
};
use entra_graph::{ApiVersion, GraphClient, GraphError};

use super::harness::*;
use super::soft_key::{Attest, MakeArgs, YK5_STR};

mod auth;
mod binaries;
mod cms;
mod directory;
mod entra2026;
mod faults;
mod operations;
mod pacing;
mod preflight;
mod provenance;
mod slow_failures;
mod strict;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}
