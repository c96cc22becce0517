//! sig-bench: signature verification cost of fido-core's backends (*ring*, RustCrypto)
//! against libfido2 on the same bytes: the libfido2 recordings of a YubiKey's packed
//! attestation (x5c, signature-only checks on all sides) and an ES256 assertion.
//!
//! Run (release; never in CI, which only builds it):
//! `cargo run --release -p sig-bench -- [--rounds N] [--round-ms MS]`
//!
//! The libfido2 column exists when the build found libfido2 (Debian: `libfido2-dev`);
//! see build.rs. Method: each implementation is calibrated to about `--round-ms` per
//! round, then the implementations run in turn, the order reversed every other round, for
//! `--rounds` rounds, each timed by the thread's CPU time (so other load on the machine
//! inflates the figures less). Printed: each one's median and minimum µs/op over the
//! rounds, and the ratio keysmith/libfido2 taken round by round (median, min–max).

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use fido_core::attestation::{
    packed_att_stmt, verify_assertion_using, AttestationObject, CertificatePolicy,
};
use fido_core::cose::{CoseKey, ALG_ES256};
use fido_core::verify::{
    verify_signature, RingVerifier, RustCryptoVerifier, SignatureAlgorithm, SignatureVerifier,
};

#[cfg(libfido2)]
mod peer;

/// One implementation of an operation: a label and one call of it.
type Impl<'a> = (&'static str, Box<dyn FnMut() + 'a>);

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fido-core/tests/fixtures/libfido2")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()));
    let hex: String = text.split_whitespace().collect();
    base16ct::mixed::decode_vec(hex).expect("hex fixture")
}

/// A fixture holding one CBOR byte string (libfido2 stores authData that way): its content.
fn cbor_bytes(name: &str) -> Vec<u8> {
    let b = fixture(name);
    match b.first() {
        Some(0x58) => b[2..].to_vec(),
        Some(0x59) => b[3..].to_vec(),
        _ => b,
    }
}

struct Args {
    rounds: usize,
    round: Duration,
}

fn args() -> Args {
    let mut a = Args {
        rounds: 7,
        round: Duration::from_millis(200),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--rounds" => a.rounds = num().max(1) as usize,
            "--round-ms" => a.round = Duration::from_millis(num().max(1)),
            "all" => {}
            other => {
                eprintln!("usage: sig-bench [--rounds N] [--round-ms MS] (unknown {other:?})");
                std::process::exit(2);
            }
        }
    }
    a
}

/// This thread's CPU time in nanoseconds (what the operation itself costs, robust to
/// other processes competing for the CPU); wall time where there is no such clock.
fn thread_cpu_ns() -> Option<u128> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

fn time_n(f: &mut dyn FnMut(), n: u64) -> f64 {
    let wall = Instant::now();
    let cpu = thread_cpu_ns();
    for _ in 0..n {
        f();
    }
    let ns = match (cpu, thread_cpu_ns()) {
        (Some(a), Some(b)) => b - a,
        _ => wall.elapsed().as_nanos(),
    };
    ns as f64 / n as f64
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the implementations of one operation in alternation; returns ns/op per round.
fn measure(impls: &mut [Impl<'_>], args: &Args) -> Vec<Vec<f64>> {
    let mut iters = Vec::new();
    for (_, f) in impls.iter_mut() {
        // Warm up for ~100 ms, then size a round.
        let warm = Instant::now();
        let mut n = 0u64;
        while warm.elapsed() < Duration::from_millis(100) {
            f();
            n += 1;
        }
        let per = warm.elapsed().as_nanos() as f64 / n as f64;
        iters.push(((args.round.as_nanos() as f64 / per) as u64).max(1));
    }
    let mut per_round = vec![Vec::new(); impls.len()];
    for round in 0..args.rounds {
        let mut order: Vec<usize> = (0..impls.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            per_round[i].push(time_n(&mut impls[i].1, iters[i]));
        }
    }
    per_round
}

fn report(op: &str, impls: &[Impl<'_>], per_round: &[Vec<f64>]) {
    let peer = impls.iter().position(|(l, _)| *l == "libfido2");
    for (i, (label, _)) in impls.iter().enumerate() {
        let mut v = per_round[i].clone();
        let med = median(&mut v);
        let ratio = match peer {
            Some(p) if p != i => {
                let mut r: Vec<f64> = per_round[i]
                    .iter()
                    .zip(&per_round[p])
                    .map(|(a, b)| a / b)
                    .collect();
                let (lo, hi) = (
                    r.iter().copied().fold(f64::INFINITY, f64::min),
                    r.iter().copied().fold(0.0, f64::max),
                );
                format!("{:.3} ({lo:.3}–{hi:.3})", median(&mut r))
            }
            _ => "—".into(),
        };
        println!(
            "| {op} | {label} | {:.1} µs | {:.1} µs | {ratio} |",
            med / 1000.0,
            v[0] / 1000.0
        );
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} logical CPUs, load average {}", loadavg())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() {
    let args = args();
    let backends: [&dyn SignatureVerifier; 2] = [&RingVerifier, &RustCryptoVerifier];

    // The packed attestation: authData, x5c leaf and sig of the recorded makeCredential.
    let cred_ad = cbor_bytes("cred-authdata.hex");
    let x509 = fixture("cred-x509.hex");
    let cred_sig = fixture("cred-sig.hex");
    let cred_cdh: [u8; 32] = fixture("cred-cdh.hex").try_into().expect("cdh");
    let stmt = packed_att_stmt(ALG_ES256, &cred_sig, Some(std::slice::from_ref(&x509)));
    let att = AttestationObject::from_parts("packed", &cred_ad, &stmt).expect("attestation");
    // The ES256 assertion.
    let pk = fixture("assert-es256_pk.hex");
    let key = CoseKey::Ec2 {
        alg: ALG_ES256,
        x: pk[..32].try_into().expect("x"),
        y: pk[32..64].try_into().expect("y"),
    };
    let as_ad = cbor_bytes("assert-authdata.hex");
    let as_sig = fixture("assert-sig.hex");
    let as_cdh: [u8; 32] = fixture("assert-cdh.hex").try_into().expect("cdh");

    for v in backends {
        att.verify_using(&cred_cdh, CertificatePolicy::SignatureOnly, v)
            .unwrap_or_else(|e| panic!("{}: attestation: {e}", v.name()));
        verify_assertion_using(v, &key, &as_ad, &as_cdh, &as_sig)
            .unwrap_or_else(|e| panic!("{}: assertion: {e}", v.name()));
    }

    #[cfg(libfido2)]
    let peer = peer::Peer::new(&cred_ad, &x509, &cred_sig, &cred_cdh, &pk, &as_cdh, &as_sig);
    #[cfg(libfido2)]
    peer.check(&cred_ad, &x509, &cred_sig, &cred_cdh, &as_ad);

    println!("# sig-bench: ES256 verification, keysmith (fido-core) vs libfido2, same bytes");
    println!("machine: {}", machine());
    println!(
        "{} rounds of ~{} ms per implementation, alternated; {} per operation",
        args.rounds,
        args.round.as_millis(),
        if thread_cpu_ns().is_some() {
            "thread CPU time"
        } else {
            "wall time"
        }
    );
    if !cfg!(libfido2) {
        println!("libfido2: not built in (install libfido2-dev and rebuild for the comparison)");
    }
    println!();
    println!("| operation | implementation | median | min | ratio to libfido2: median (min–max) |");
    println!("|---|---|---|---|---|");

    // 1. Packed attestation, pre-parsed object: signature-only checks.
    let mut impls: Vec<Impl<'_>> = Vec::new();
    for v in backends {
        let (att, cdh) = (&att, &cred_cdh);
        impls.push((
            v.name(),
            Box::new(move || {
                black_box(
                    att.verify_using(black_box(cdh), CertificatePolicy::SignatureOnly, v)
                        .is_ok(),
                );
            }),
        ));
    }
    #[cfg(libfido2)]
    impls.push(("libfido2", Box::new(|| peer.cred_verify())));
    let r = measure(&mut impls, &args);
    report("packed attestation verify", &impls, &r);

    // 2. The same from bytes: statement + object built, authData parsed, verified.
    let mut impls: Vec<Impl<'_>> = Vec::new();
    for v in backends {
        let (ad, x5c, sig, cdh) = (&cred_ad, &x509, &cred_sig, &cred_cdh);
        impls.push((
            v.name(),
            Box::new(move || {
                let stmt = packed_att_stmt(ALG_ES256, sig, Some(std::slice::from_ref(x5c)));
                let obj = AttestationObject::from_parts("packed", black_box(ad), &stmt)
                    .expect("attestation");
                black_box(
                    obj.verify_using(cdh, CertificatePolicy::SignatureOnly, v)
                        .is_ok(),
                );
            }),
        ));
    }
    #[cfg(libfido2)]
    {
        let (ad, x5c, sig, cdh) = (&cred_ad, &x509, &cred_sig, &cred_cdh);
        impls.push((
            "libfido2",
            Box::new(move || peer::cred_parse_verify(ad, x5c, sig, cdh)),
        ));
    }
    let r = measure(&mut impls, &args);
    report("packed attestation parse + verify", &impls, &r);

    // 3. ES256 assertion: authData parsed, signature verified.
    let mut impls: Vec<Impl<'_>> = Vec::new();
    for v in backends {
        let (key, ad, cdh, sig) = (&key, &as_ad, &as_cdh, &as_sig);
        impls.push((
            v.name(),
            Box::new(move || {
                black_box(verify_assertion_using(v, key, black_box(ad), cdh, sig).is_ok());
            }),
        ));
    }
    #[cfg(libfido2)]
    {
        let (ad, peer) = (&as_ad, &peer);
        impls.push(("libfido2", Box::new(move || peer.assert_verify(ad))));
    }
    let r = measure(&mut impls, &args);
    report("ES256 assertion verify", &impls, &r);

    // 4. The bare ES256 signature check (keysmith only: libfido2 has no such entry point).
    let mut message = as_ad.clone();
    message.extend_from_slice(&as_cdh);
    let mut impls: Vec<Impl<'_>> = Vec::new();
    for v in backends {
        let (key, message, sig) = (&key, &message, &as_sig);
        impls.push((
            v.name(),
            Box::new(move || {
                black_box(
                    verify_signature(
                        v,
                        SignatureAlgorithm::Es256,
                        key.verify_key(),
                        black_box(message),
                        sig,
                    )
                    .is_ok(),
                );
            }),
        ));
    }
    let r = measure(&mut impls, &args);
    report("ES256 signature only", &impls, &r);
    println!();
    println!("load average after: {}", loadavg());
}
