//! Decode and verification cost of real authenticator responses (libfido2 recordings):
//! getInfo, makeCredential and getAssertion responses, CTAPHID reassembly, and a packed
//! attestation verification. Prints nanoseconds per operation.
//!
//! The last block times fido-core's CBOR reader against the reader candidate built on
//! ciborium-ll (issue 17 item 7b; `tests/ciborium/ll_reader.rs`) and against ciborium's own
//! `Value` decoding, on the same payloads, alternating in rounds and keeping each one's best
//! round (the machine is shared). Figures: docs/benchmarks.md; decision: ARCHITECTURE.md.
//!
//! Run: `cargo bench -p fido-core --bench decode` (release profile; CI only compiles it)

#[path = "../tests/ciborium/ll_reader.rs"]
mod ll_reader;

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use fido_core::attestation::{verify_assertion, AttestationObject, CertificatePolicy};
use fido_core::cbor::{decode_with, Limits};
use fido_core::commands::{decode_response, GetAssertion, GetInfo, MakeCredential};
use fido_core::cose::{CoseKey, ALG_ES256};
use fido_core::ctaphid::{Cid, Command, Event, HidClient};

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/libfido2")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    let hex: String = text.split_whitespace().collect();
    base16ct::mixed::decode_vec(hex).expect("hex")
}

fn reports(name: &str) -> Vec<[u8; 64]> {
    fixture(name)
        .chunks(64)
        .map(|c| {
            let mut r = [0u8; 64];
            r[..c.len()].copy_from_slice(c);
            r
        })
        .collect()
}

/// Reassembles the one CTAPHID_CBOR response of a recording.
fn reassemble(reports: &[[u8; 64]]) -> Vec<u8> {
    let cid = Cid::from_bytes([reports[0][0], reports[0][1], reports[0][2], reports[0][3]]);
    let now = Instant::now();
    let mut host = HidClient::with_channel(cid, Duration::from_secs(1)).expect("channel");
    host.send(Command::Cbor, &[0x04], now).expect("send");
    while host.poll_transmit().is_some() {}
    for r in reports {
        host.handle_report(r, now).expect("report");
    }
    loop {
        match host.poll_event() {
            Some(Event::Response { payload, .. }) => return payload,
            Some(_) => continue,
            None => panic!("no response"),
        }
    }
}

fn bench(name: &str, mut f: impl FnMut()) {
    // Warm up, then run for about half a second.
    for _ in 0..10 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(500) {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    let per = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{name:<44} {per:>12.0} ns/op  ({n} runs)");
}

/// Nanoseconds per call of `f`, over about `ms` milliseconds.
fn per_op(ms: u64, f: &mut dyn FnMut()) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(ms) {
        for _ in 0..16 {
            f();
        }
        n += 16;
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Times the readers on one payload in alternating rounds; prints each one's best round and
/// its ratio to the first (fido-core's reader).
fn compare(name: &str, readers: &mut [(&str, &mut dyn FnMut())]) {
    let mut best = vec![f64::INFINITY; readers.len()];
    for (_, f) in readers.iter_mut() {
        for _ in 0..10 {
            f();
        }
    }
    for _round in 0..7 {
        for (i, (_, f)) in readers.iter_mut().enumerate() {
            best[i] = best[i].min(per_op(150, *f));
        }
    }
    for (i, (reader, _)) in readers.iter().enumerate() {
        let label = format!("{name}: {reader}");
        println!(
            "{label:<58} {:>9.0} ns/op  {:>5.2}x",
            best[i],
            best[i] / best[0]
        );
    }
}

fn main() {
    let info_reports = reports("wiredata-ctap_cbor_info.hex");
    let info = reassemble(&info_reports);
    let cred = reassemble(&reports("cred-wiredata-makecred.hex"));
    let assert_reports = reports("wiredata-ctap_cbor_assert.hex");
    // libfido2 edited the channel of this recording's continuation reports; restore it.
    let fixed: Vec<[u8; 64]> = assert_reports
        .iter()
        .map(|r| {
            let mut r = *r;
            r[..4].copy_from_slice(&assert_reports[0][..4]);
            r
        })
        .collect();
    let assertion = reassemble(&fixed);
    let cdh: [u8; 32] = fixture("cred-cdh.hex").try_into().expect("cdh");

    println!("fido-core decode/verify benchmark (recorded YubiKey responses)");
    println!("{:<44} {:>12}", "operation", "time");
    bench("CTAPHID reassembly: getInfo (11 reports)", || {
        black_box(reassemble(black_box(&info_reports)));
    });
    bench("decode getInfo response", || {
        black_box(decode_response::<GetInfo>(black_box(&info)).expect("getInfo"));
    });
    bench("decode makeCredential response", || {
        black_box(decode_response::<MakeCredential>(black_box(&cred)).expect("makeCredential"));
    });
    bench("decode getAssertion response", || {
        black_box(decode_response::<GetAssertion>(black_box(&assertion)).expect("getAssertion"));
    });
    let mc = decode_response::<MakeCredential>(&cred).expect("makeCredential");
    bench("parse + verify packed x5c attestation", || {
        let obj =
            AttestationObject::from_parts(&mc.fmt, &mc.auth_data, &mc.att_stmt).expect("parts");
        black_box(
            obj.verify_with(&cdh, CertificatePolicy::SignatureOnly)
                .expect("verifies"),
        );
    });
    let pk = fixture("assert-es256_pk.hex");
    let key = CoseKey::Ec2 {
        alg: ALG_ES256,
        x: pk[..32].try_into().expect("x"),
        y: pk[32..64].try_into().expect("y"),
    };
    let mut auth_data = fixture("assert-authdata.hex");
    if auth_data[0] == 0x58 {
        auth_data.drain(..2);
    }
    let sig = fixture("assert-sig.hex");
    let acdh: [u8; 32] = fixture("assert-cdh.hex").try_into().expect("cdh");
    bench("verify ES256 assertion signature", || {
        black_box(verify_assertion(&key, &auth_data, &acdh, &sig).expect("verifies"));
    });

    println!();
    println!("CBOR readers on the same payloads (best of 7 alternating rounds)");
    for (name, payload) in [
        ("getInfo", &info),
        ("makeCredential", &cred),
        ("getAssertion", &assertion),
    ] {
        let cbor = &payload[1..];
        assert_eq!(
            ll_reader::decode_with(cbor, Limits::RESPONSE),
            decode_with(cbor, Limits::RESPONSE),
            "the candidate reads {name} as fido-core does"
        );
        compare(
            name,
            &mut [
                ("fido-core reader", &mut || {
                    black_box(decode_with(black_box(cbor), Limits::RESPONSE).expect("decodes"));
                }),
                ("candidate on ciborium-ll", &mut || {
                    black_box(
                        ll_reader::decode_with(black_box(cbor), Limits::RESPONSE).expect("decodes"),
                    );
                }),
                ("ciborium::Value (lenient, reference)", &mut || {
                    let v: ciborium::Value =
                        ciborium::de::from_reader(black_box(cbor)).expect("decodes");
                    black_box(v);
                }),
            ],
        );
    }
}
