//! Round-trip properties over every message type: encode → decode is the identity, the
//! encoding is canonical (decoding with canonical limits accepts it), and seal → open
//! returns the same envelope. Plus: random bytes and random mutations never panic.

mod common;

use common::{agent_key, samples, server_key};
use keysmith_wire::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._@:/-]{0,24}"
}
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..40)
}
fn ids() -> impl Strategy<Value = Vec<Vec<u8>>> {
    vec(bytes(), 0..4)
}

fn pin() -> impl Strategy<Value = PinSource> {
    prop_oneof![
        any::<u32>().prop_map(PinSource::Secret),
        (any::<u32>(), any::<bool>())
            .prop_map(|(min_len, confirm)| PinSource::NewHolderPin { min_len, confirm }),
        Just(PinSource::Current),
        Just(PinSource::HolderPin),
    ]
}

fn step() -> impl Strategy<Value = DeviceStep> {
    prop_oneof![
        Just(DeviceStep::ReadInfo),
        (text(), ids(), bytes()).prop_map(|(rp_id, allow, client_data_json)| DeviceStep::Probe {
            rp_id,
            allow,
            client_data_json
        }),
        (any::<bool>(), of(any::<[u8; 16]>())).prop_map(|(require_replug, only_if_aaguid)| {
            DeviceStep::Reset {
                require_replug,
                only_if_aaguid,
            }
        }),
        pin().prop_map(|pin| DeviceStep::SetPin { pin }),
        (pin(), pin()).prop_map(|(current, new)| DeviceStep::ChangePin { current, new }),
        pin().prop_map(|pin| DeviceStep::VerifyPin { pin }),
        (
            of(any::<u32>()),
            vec(text(), 0..3),
            any::<bool>(),
            of(pin())
        )
            .prop_map(
                |(min, rp_ids, force_change, pin)| DeviceStep::SetMinPinLength {
                    min,
                    rp_ids,
                    force_change,
                    pin
                }
            ),
        of(pin()).prop_map(|pin| DeviceStep::EnableAlwaysUv { pin }),
        (any::<u32>(), any::<u32>(), pin()).prop_map(|(min, timeout_ms, pin)| {
            DeviceStep::EnrollFingerprints {
                min,
                timeout_ms,
                pin,
            }
        }),
        (
            (text(), text(), text(), bytes(), text(), text()),
            (
                bytes(),
                vec(any::<i64>(), 0..4),
                ids(),
                of(any::<u8>()),
                any::<bool>(),
                any::<bool>(),
                pin(),
                of(any::<u8>())
            ),
        )
            .prop_map(
                |(
                    (passkey_template, rp_id, rp_name, user_id, name, display_name),
                    (
                        client_data_json,
                        algs,
                        exclude,
                        cred_protect,
                        min_pin_length,
                        hmac_secret,
                        pin,
                        enterprise_attestation,
                    ),
                )| {
                    DeviceStep::MakeCredential {
                        passkey_template,
                        rp: RpInfo {
                            id: rp_id,
                            name: rp_name,
                        },
                        user: UserInfo {
                            id: user_id,
                            name,
                            display_name,
                        },
                        client_data_json,
                        algs,
                        exclude,
                        cred_protect,
                        min_pin_length,
                        hmac_secret,
                        pin,
                        enterprise_attestation,
                    }
                }
            ),
        (text(), ids(), bytes(), of(pin())).prop_map(|(rp_id, allow, client_data_json, pin)| {
            DeviceStep::GetAssertion {
                rp_id,
                allow,
                client_data_json,
                pin,
            }
        }),
        (text(), bytes(), pin()).prop_map(|(rp_id, credential_id, pin)| {
            DeviceStep::CredMgmtDelete {
                rp_id,
                credential_id,
                pin,
            }
        }),
        pin().prop_map(|pin| DeviceStep::ReadIdentifier { pin }),
    ]
}

fn job() -> impl Strategy<Value = Job> {
    (
        text(),
        of(text()),
        (of(any::<[u8; 16]>()), of(text()), of(ids())),
        any::<u64>(),
        vec(step(), 0..6),
        vec((any::<u32>(), vec(any::<u8>(), 65), bytes()), 0..3),
    )
        .prop_map(
            |(operation, key_id, (aaguid, serial, credential_ids), deadline_ms, steps, secrets)| {
                Job {
                    operation,
                    key_id,
                    expect: Expect {
                        aaguid,
                        serial,
                        credential_ids,
                    },
                    deadline_ms,
                    steps,
                    secrets: secrets
                        .into_iter()
                        .map(|(id, enc, ct)| SealedSecret {
                            id,
                            enc: enc.try_into().unwrap(),
                            ct,
                        })
                        .collect(),
                }
            },
        )
}

fn refusal() -> impl Strategy<Value = RefusalCode> {
    use RefusalCode::*;
    prop::sample::select(vec![
        BadSignature,
        UnknownKey,
        AgentNotApproved,
        AgentRevoked,
        SessionUnknown,
        SessionBroken,
        SessionExpired,
        TtlExpired,
        UnknownStep,
        UnknownField,
        VersionUnsupported,
        CapabilityMissing,
        NotKeyOwner,
        HolderAuthFailed,
        ChallengeExpired,
        WrongKey,
        NotAllowed,
        VerificationFailed,
        Busy,
        Internal,
    ])
}

fn server_msg() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        (
            any::<[u8; 16]>(),
            any::<u32>(),
            any::<u64>(),
            any::<[u8; 32]>(),
            of(vec(any::<u8>(), 65))
        )
            .prop_map(
                |(server_nonce, version, server_time_ms, hello_digest, next)| ServerMessage::Hello(
                    ServerHello {
                        server_nonce,
                        version,
                        server_time_ms,
                        hello_digest,
                        next_server_key: next.map(|k| k.try_into().unwrap()),
                    }
                )
            ),
        (
            text(),
            text(),
            vec(text(), 0..4),
            text(),
            of(text()),
            any::<u32>(),
            text()
        )
            .prop_map(
                |(issuer, client_id, scopes, nonce, login_hint, max_age_s, session_code)| {
                    ServerMessage::NeedHolderAuth(NeedHolderAuth {
                        issuer,
                        client_id,
                        scopes,
                        nonce,
                        login_hint,
                        max_age_s,
                        session_code,
                    })
                }
            ),
        job().prop_map(ServerMessage::Job),
        (text(), text(), any::<bool>(), any::<u32>()).prop_map(
            |(key_id, state, needs_reissue, registered)| ServerMessage::JobAck(JobAck {
                key_id,
                state,
                needs_reissue,
                registered
            })
        ),
        (refusal(), text(), of(any::<bool>()), of(text())).prop_map(
            |(code, reason, needs_reissue, step)| ServerMessage::Refused(Refused {
                code,
                reason,
                needs_reissue,
                step
            })
        ),
        any::<u64>().prop_map(|retry_ms| ServerMessage::Wait { retry_ms }),
        (of(text()), of(text())).prop_map(|(key_id, state)| ServerMessage::Done { key_id, state }),
    ]
}

fn outcome() -> impl Strategy<Value = Outcome> {
    let status = prop::sample::select(vec![
        OutcomeStatus::Ok,
        OutcomeStatus::Ctap,
        OutcomeStatus::Cancelled,
        OutcomeStatus::Skipped,
        OutcomeStatus::Unsupported,
        OutcomeStatus::DeviceError,
    ]);
    let out = prop_oneof![
        (bytes(), bytes()).prop_map(|(credential_id, attestation_object)| StepOutput::Made {
            credential_id,
            attestation_object
        }),
        (bytes(), bytes(), bytes(), of(bytes())).prop_map(
            |(credential_id, auth_data, signature, user_handle)| StepOutput::Asserted {
                credential_id,
                auth_data,
                signature,
                user_handle
            }
        ),
        bytes().prop_map(|get_info| StepOutput::Info { get_info }),
        any::<u32>().prop_map(|enrolled| StepOutput::Enrolled { enrolled }),
        vec(any::<u8>(), 0..=64).prop_map(|identifier| StepOutput::Identifier { identifier }),
    ];
    (
        any::<u32>(),
        status,
        of(any::<u8>()),
        of(any::<u32>()),
        of(out),
    )
        .prop_map(|(step, status, ctap, retries, out)| Outcome {
            step,
            status,
            ctap,
            retries,
            out,
            error: None,
        })
}

fn agent_msg() -> impl Strategy<Value = AgentMessage> {
    let caps = (any::<[bool; 5]>(), any::<u32>()).prop_map(|(b, max_job_steps)| Capabilities {
        ctap_raw: b[0],
        webauthn_platform: b[1],
        can_reset_in_place: b[2],
        interactive_holder_ui: b[3],
        bio_ui: b[4],
        max_job_steps,
    });
    let host = (text(), text(), any::<bool>(), any::<bool>()).prop_map(
        |(name, os, elevated, remote_session)| HostClaim {
            name,
            os,
            elevated,
            remote_session,
        },
    );
    let op = prop::sample::select(vec![
        RequestOp::Work,
        RequestOp::Activate,
        RequestOp::SelfIssue,
        RequestOp::Verify,
        RequestOp::Reset,
    ]);
    prop_oneof![
        (
            any::<[u8; 32]>(),
            text(),
            vec(any::<u32>(), 0..3),
            vec(any::<u8>(), 65),
            any::<[u8; 16]>(),
            caps,
            host
        )
            .prop_map(
                |(id, agent_version, versions, session_pub, nonce, caps, host)| AgentMessage::Hello(
                    AgentHello {
                        agent_id: KeyId(id),
                        agent_version,
                        versions,
                        session_pub: session_pub.try_into().unwrap(),
                        nonce,
                        caps,
                        host,
                    }
                )
            ),
        (
            text(),
            of(bytes()),
            of(text()),
            of(text()),
            of(any::<u32>()),
            of(any::<u32>()),
            of(text())
        )
            .prop_map(
                |(
                    transport,
                    get_info,
                    serial_claim,
                    serial_source,
                    pin_retries,
                    uv_retries,
                    reader,
                )| AgentMessage::DeviceReport(DeviceReport {
                    transport,
                    get_info,
                    serial_claim,
                    serial_source,
                    pin_retries,
                    uv_retries,
                    reader,
                })
            ),
        (op, of(text()), of(text())).prop_map(|(operation, template, key_id)| {
            AgentMessage::Request(Request {
                operation,
                template,
                key_id,
            })
        }),
        text().prop_map(|t| AgentMessage::HolderAuth(HolderAuth { id_token: t.into() })),
        (any::<u32>(), text(), of(any::<u32>()), of(any::<u32>())).prop_map(
            |(step, prompt, n, of)| AgentMessage::Progress(ProgressNote {
                step,
                prompt,
                n,
                of
            })
        ),
        (any::<[u8; 32]>(), vec(outcome(), 0..5), of(bytes())).prop_map(
            |(job_digest, outcomes, info_after)| AgentMessage::JobResult(JobResult {
                job_digest,
                outcomes,
                info_after
            })
        ),
        (text(), of(text()))
            .prop_map(|(reason, detail)| AgentMessage::Abort(Abort { reason, detail })),
        Just(AgentMessage::Ready),
    ]
}

/// Fills the envelope fields the contract requires for `kind`.
fn agent_env(
    msg: AgentMessage,
    seq: u64,
    session: [u8; 16],
    job: Option<[u8; 16]>,
) -> Envelope<AgentMessage> {
    let is_hello = matches!(msg, AgentMessage::Hello(_));
    let needs_job = matches!(msg, AgentMessage::Progress(_) | AgentMessage::JobResult(_));
    Envelope {
        session: (!is_hello).then_some(SessionId(session)),
        seq,
        job: if needs_job {
            Some(JobId(job.unwrap_or_default()))
        } else {
            job.map(JobId)
        },
        ttl_ms: None,
        msg,
    }
}

fn server_env(
    msg: ServerMessage,
    seq: u64,
    session: [u8; 16],
    job: Option<[u8; 16]>,
    ttl_ms: Option<u64>,
) -> Envelope<ServerMessage> {
    let needs_job = matches!(msg, ServerMessage::Job(_) | ServerMessage::JobAck(_));
    Envelope {
        session: Some(SessionId(session)),
        seq,
        job: if needs_job {
            Some(JobId(job.unwrap_or_default()))
        } else {
            job.map(JobId)
        },
        ttl_ms,
        msg,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn agent_messages_round_trip(msg in agent_msg(), seq in any::<u64>(), session in any::<[u8; 16]>(), job in of(any::<[u8; 16]>())) {
        let mut env = agent_env(msg, seq, session, job);
        let bytes = encode_agent(&env);
        prop_assert_eq!(decode_agent(&bytes).unwrap(), env.clone());
        // A hello must be signed by the agent it names.
        if let AgentMessage::Hello(h) = &mut env.msg { h.agent_id = agent_key().key_id(); }
        let sealed = seal_agent(&env, &agent_key());
        let opened = open_agent(&sealed, &agent_key().public_key()).unwrap();
        prop_assert_eq!(opened.envelope, env);
        prop_assert_eq!(opened.signer, agent_key().key_id());
        prop_assert_eq!(opened.digest, sha256(&sealed));
    }

    #[test]
    fn server_messages_round_trip(msg in server_msg(), seq in any::<u64>(), session in any::<[u8; 16]>(), job in of(any::<[u8; 16]>()), ttl in of(any::<u64>())) {
        let env = server_env(msg, seq, session, job, ttl);
        let bytes = encode_server(&env);
        prop_assert_eq!(decode_server(&bytes).unwrap(), env.clone());
        let sealed = seal_server(&env, &server_key());
        prop_assert_eq!(open_server(&sealed, &[server_key().public_key()]).unwrap().envelope, env);
    }

    #[test]
    fn random_bytes_never_panic(data in vec(any::<u8>(), 0..512)) {
        let _ = decode_agent(&data);
        let _ = decode_server(&data);
        let _ = peek_kid(&data);
        let _ = open_server(&data, &[server_key().public_key()]);
        let _ = open_agent(&data, &agent_key().public_key());
    }

    #[test]
    fn mutated_payloads_never_panic(which in 0usize..15, edits in vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let (_, sample) = samples().into_iter().nth(which).unwrap();
        let mut p = sample.payload();
        for (at, b) in edits {
            let i = at % p.len();
            p[i] = b;
        }
        p.truncate(cut % (p.len() + 1) + 1);
        let _ = decode_agent(&p);
        let _ = decode_server(&p);
    }
}
