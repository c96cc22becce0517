//! A scripted device: busy answers, invalid channels, foreign nonces, garbage.

use super::*;

type Script = Box<dyn FnMut(&[u8; REPORT_LEN]) -> Vec<Vec<u8>> + Send>;

/// A pipe whose device side is a script: every written report produces the reports
/// the script returns.
struct ScriptedPipe {
    script: Script,
    out: VecDeque<Vec<u8>>,
}

impl ScriptedPipe {
    fn new(script: impl FnMut(&[u8; REPORT_LEN]) -> Vec<Vec<u8>> + Send + 'static) -> Self {
        ScriptedPipe {
            script: Box::new(script),
            out: VecDeque::new(),
        }
    }
}

impl std::fmt::Debug for ScriptedPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedPipe").finish_non_exhaustive()
    }
}

impl ReportPipe for ScriptedPipe {
    fn write_report(&mut self, report: &[u8; REPORT_LEN]) -> Result<(), Error> {
        let replies = (self.script)(report);
        self.out.extend(replies);
        Ok(())
    }
    fn read_report(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        match self.out.pop_front() {
            Some(r) => Ok(Some(r)),
            None => {
                std::thread::sleep(timeout.min(Duration::from_millis(5)));
                Ok(None)
            }
        }
    }
    fn describe(&self) -> String {
        "scripted".into()
    }
}

/// The INIT answer to an INIT request report, allocating `cid`.
fn init_answer(req: &[u8; REPORT_LEN], cid: u32) -> Vec<u8> {
    let mut body = [0u8; 17];
    body[..8].copy_from_slice(&req[7..15]);
    body[8..12].copy_from_slice(&cid.to_be_bytes());
    body[12] = 2;
    body[16] = 0x05; // WINK | CBOR
    init_report(cid_of(req), 0x06, &body)
}

#[test]
fn busy_key_is_retried_with_backoff() {
    let cbor_requests = Arc::new(AtomicUsize::new(0));
    let seen = cbor_requests.clone();
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => vec![init_answer(req, 0x0100_0001)],
        0x90 => {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            if n < 3 {
                vec![init_report(cid_of(req), 0x3f, &[0x06])]
            } else {
                vec![init_report(cid_of(req), 0x10, &[0x00, 0xa0])]
            }
        }
        _ => vec![],
    });
    let mut t = CtapHidTransport::with_config(pipe, fast()).unwrap();
    assert_eq!(t.transact(&[0x04], &mut |_| {}).unwrap(), [0x00, 0xa0]);
    assert_eq!(cbor_requests.load(Ordering::SeqCst), 4);
}

#[test]
fn busy_beyond_the_retry_budget_is_a_typed_error() {
    let cbor_requests = Arc::new(AtomicUsize::new(0));
    let seen = cbor_requests.clone();
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => vec![init_answer(req, 0x0100_0001)],
        0x90 => {
            seen.fetch_add(1, Ordering::SeqCst);
            vec![init_report(cid_of(req), 0x3f, &[0x06])]
        }
        _ => vec![],
    });
    let config = HidConfig {
        busy_retries: 2,
        ..fast()
    };
    let mut t = CtapHidTransport::with_config(pipe, config).unwrap();
    let err = t.transact(&[0x04], &mut |_| {}).unwrap_err();
    assert_eq!(hid_err(&err), Some(&HidError::ChannelBusy));
    assert_eq!(cbor_requests.load(Ordering::SeqCst), 3);
}

#[test]
fn invalid_channel_triggers_one_reinit() {
    let inits = Arc::new(AtomicUsize::new(0));
    let seen = inits.clone();
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => {
            let n = seen.fetch_add(1, Ordering::SeqCst) as u32;
            vec![init_answer(req, 0x0100_0001 + n)]
        }
        // Only the second channel is accepted.
        0x90 if cid_of(req) == [1, 0, 0, 2] => {
            vec![init_report(cid_of(req), 0x10, &[0x00])]
        }
        0x90 => vec![init_report(cid_of(req), 0x3f, &[0x0b])],
        _ => vec![],
    });
    let mut t = CtapHidTransport::with_config(pipe, fast()).unwrap();
    assert_eq!(t.channel(), Cid(0x0100_0001));
    assert_eq!(t.transact(&[0x04], &mut |_| {}).unwrap(), [0x00]);
    assert_eq!(t.channel(), Cid(0x0100_0002));
    assert_eq!(inits.load(Ordering::SeqCst), 2);
}

#[test]
fn init_with_foreign_nonces_and_garbage_is_tolerated() {
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => {
            let mut foreign = init_answer(req, 0x0900_0009);
            foreign[7] ^= 0xff; // someone else's nonce
            vec![
                foreign,
                init_report([0xff; 4], 0x3f, &[0x06]),
                init_report([0xff; 4], 0xbb & 0x7f, &[0x01]),
                vec![0u8; 64],
                init_answer(req, 0x0100_0007),
            ]
        }
        _ => vec![],
    });
    let t = CtapHidTransport::with_config(pipe, fast()).unwrap();
    assert_eq!(t.channel(), Cid(0x0100_0007));
    assert_eq!(t.init_response().protocol_version, 2);
}

#[test]
fn mute_device_fails_init_with_a_timeout() {
    let pipe = ScriptedPipe::new(|_req| vec![]);
    let err = CtapHidTransport::with_config(pipe, fast()).unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
}

#[test]
fn wink_without_capability_is_unsupported() {
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => {
            let mut r = init_answer(req, 0x0100_0001);
            r[7 + 16] = 0x04; // CBOR only
            vec![r]
        }
        _ => vec![],
    });
    let mut t = CtapHidTransport::with_config(pipe, fast()).unwrap();
    assert!(matches!(t.wink(), Err(Error::Unsupported(_))));
}

#[test]
fn ping_echo_mismatch_is_reported() {
    let pipe = ScriptedPipe::new(move |req| match req[4] {
        0x86 => vec![init_answer(req, 0x0100_0001)],
        0x81 => vec![init_report(cid_of(req), 0x01, b"other")],
        _ => vec![],
    });
    let mut t = CtapHidTransport::with_config(pipe, fast()).unwrap();
    assert!(matches!(t.ping(b"hello"), Err(Error::Hid { .. })));
}

/// Deterministic xorshift for the garbage test.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_garbage_from_the_device_never_panics_or_hangs() {
    let rng = Arc::new(Mutex::new(Rng(0x9e37_79b9_7f4a_7c15)));
    for round in 0..300u32 {
        let rng = rng.clone();
        let pipe = ScriptedPipe::new(move |req| {
            let mut rng = rng.lock().unwrap();
            if req[4] == 0x86 {
                return vec![init_answer(req, 0x0100_0001)];
            }
            let n = (rng.next() % 6) as usize;
            (0..n)
                .map(|_| {
                    let len = match rng.next() % 8 {
                        0 => (rng.next() % 80) as usize,
                        _ => REPORT_LEN,
                    };
                    let mut r: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                    // Mostly on our channel, so the parser is really exercised.
                    if len >= 5 && !rng.next().is_multiple_of(4) {
                        r[..4].copy_from_slice(&[1, 0, 0, 1]);
                        if rng.next().is_multiple_of(2) {
                            r[4] = [0x90, 0xbb, 0xbf, 0x00, 0x01][(rng.next() % 5) as usize];
                        }
                    }
                    r
                })
                .collect()
        });
        let config = HidConfig {
            inactivity_timeout: Duration::from_millis(20),
            transaction_timeout: Duration::from_millis(500),
            busy_retries: 1,
            busy_backoff: Duration::from_millis(1),
            drain_quiet: Duration::from_millis(1),
            ..HidConfig::default()
        };
        let mut t = CtapHidTransport::with_config(pipe, config).unwrap();
        // Any outcome is fine as long as it is an outcome.
        let _ = t.transact(&[0x04, round as u8], &mut |_| {});
    }
}
