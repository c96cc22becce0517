//! Fuzzing entry point for the transport-facing CTAPHID parsing (not a stable API).
//!
//! A fuzz target calls [`drive_transport`] with arbitrary bytes; they become the
//! reports a misbehaving key sends back. The driver must end every call with a result
//! (never panic, never hang, never allocate beyond the protocol bounds).

use std::collections::VecDeque;
use std::time::Duration;

use fido_core::ctaphid::{fragment, Capabilities, Cid, Command, InitResponse, REPORT_LEN};

use super::{CtapHidTransport, HidConfig, ReportPipe};
use crate::{Error, Transport};

/// The channel the fuzzed key allocates.
const FUZZ_CID: Cid = Cid(0x0102_0304);

/// A key that answers INIT properly and everything else with reports cut from the
/// fuzzer's bytes.
struct FuzzPipe<'a> {
    data: &'a [u8],
    out: VecDeque<Vec<u8>>,
}

impl FuzzPipe<'_> {
    /// Takes the next report from the data: a selector byte, then the report bytes.
    /// Selector bit 7 set: a short report of `selector & 0x3f` bytes. Bit 6 set: the
    /// report is put on the allocated channel.
    fn next_report(&mut self) -> Option<Vec<u8>> {
        let (&selector, rest) = self.data.split_first()?;
        let len = if selector & 0x80 != 0 {
            usize::from(selector & 0x3f)
        } else {
            REPORT_LEN
        };
        let take = len.min(rest.len());
        let (report, rest) = rest.split_at(take);
        self.data = rest;
        let mut report = report.to_vec();
        if selector & 0x40 != 0 {
            if let Some(cid) = report.get_mut(..4) {
                cid.copy_from_slice(&FUZZ_CID.to_bytes());
            }
        }
        Some(report)
    }
}

impl ReportPipe for FuzzPipe<'_> {
    fn write_report(&mut self, report: &[u8; REPORT_LEN]) -> Result<(), Error> {
        if report[4] == Command::Init.to_u8() | 0x80 {
            let mut nonce = [0u8; 8];
            nonce.copy_from_slice(&report[7..15]);
            let body = InitResponse {
                nonce,
                cid: FUZZ_CID,
                protocol_version: 2,
                version_major: 0,
                version_minor: 0,
                version_build: 0,
                capabilities: Capabilities::CBOR | Capabilities::WINK,
            }
            .to_bytes();
            let cid = Cid::from_bytes([report[0], report[1], report[2], report[3]]);
            if let Ok(reports) = fragment(cid, Command::Init, &body) {
                self.out.extend(reports.iter().map(|r| r.to_vec()));
            }
            return Ok(());
        }
        // A few reports in answer to every report written.
        for _ in 0..4 {
            match self.next_report() {
                Some(r) => self.out.push_back(r),
                None => break,
            }
        }
        Ok(())
    }

    fn read_report(&mut self, _timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.out.pop_front())
    }

    fn describe(&self) -> String {
        "fuzz".into()
    }
}

/// Runs a CBOR request, a PING and a WINK against a key whose answers are `data`.
#[doc(hidden)]
pub fn drive_transport(data: &[u8]) {
    let config = HidConfig {
        inactivity_timeout: Duration::from_millis(2),
        transaction_timeout: Duration::from_millis(50),
        read_slice: Duration::from_millis(1),
        busy_retries: 1,
        busy_backoff: Duration::from_millis(1),
        drain_quiet: Duration::from_millis(1),
    };
    let pipe = FuzzPipe {
        data,
        out: VecDeque::new(),
    };
    let Ok(mut t) = CtapHidTransport::with_config(pipe, config) else {
        return;
    };
    let _ = t.transact(&[0x04], &mut |_| {});
    let _ = t.ping(&[0x55; 100]);
    let _ = t.wink();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arbitrary_bytes_end_in_a_result() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in [0usize, 1, 7, 64, 65, 200, 1000] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            drive_transport(&data);
        }
    }

    #[test]
    fn a_well_formed_answer_is_accepted() {
        // Selector 0x40: a full report on our channel: CBOR response, BCNT 1, status 0.
        let mut data = vec![0x40];
        let mut report = [0u8; REPORT_LEN];
        report[4] = 0x90;
        report[6] = 1;
        data.extend_from_slice(&report);
        let mut pipe = FuzzPipe {
            data: &data,
            out: VecDeque::new(),
        };
        let r = pipe.next_report().unwrap_or_default();
        assert_eq!(&r[..7], &[1, 2, 3, 4, 0x90, 0, 1]);
        assert!(pipe.next_report().is_none());
    }
}
