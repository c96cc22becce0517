//! The libfido2 peer (harness/libfido2_peer.c, linked by build.rs).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::hint::black_box;

const RP_ID: &CStr = c"localhost";
const FIDO_OK: c_int = 0;

extern "C" {
    fn h_cred_new(
        authdata: *const u8,
        authdata_len: usize,
        x509: *const u8,
        x509_len: usize,
        sig: *const u8,
        sig_len: usize,
        cdh: *const u8,
        rp_id: *const c_char,
    ) -> *mut c_void;
    fn h_cred_verify(cred: *const c_void) -> c_int;
    fn h_cred_free(cred: *mut c_void);
    fn h_cred_parse_verify(
        authdata: *const u8,
        authdata_len: usize,
        x509: *const u8,
        x509_len: usize,
        sig: *const u8,
        sig_len: usize,
        cdh: *const u8,
        rp_id: *const c_char,
    ) -> c_int;
    fn h_assert_new(
        cdh: *const u8,
        rp_id: *const c_char,
        sig: *const u8,
        sig_len: usize,
    ) -> *mut c_void;
    fn h_es256_pk_new(xy: *const u8, len: usize) -> *mut c_void;
    fn h_assert_verify(
        assert: *mut c_void,
        pk: *const c_void,
        authdata: *const u8,
        authdata_len: usize,
    ) -> c_int;
    fn h_assert_free(assert: *mut c_void, pk: *mut c_void);
}

/// A libfido2 credential and assertion set up once (libfido2 copies every input).
pub struct Peer {
    cred: *mut c_void,
    assert: *mut c_void,
    pk: *mut c_void,
}

impl Peer {
    /// Sets up the packed credential and the ES256 assertion; panics if libfido2 refuses.
    pub fn new(
        cred_ad: &[u8],
        x509: &[u8],
        cred_sig: &[u8],
        cred_cdh: &[u8; 32],
        pk_xy: &[u8],
        as_cdh: &[u8; 32],
        as_sig: &[u8],
    ) -> Peer {
        // SAFETY: every pointer/length pair comes from a live slice, the cdh arrays are
        // 32 bytes as the harness reads, RP_ID is NUL-terminated; libfido2 copies them.
        let (cred, assert, pk) = unsafe {
            (
                h_cred_new(
                    cred_ad.as_ptr(),
                    cred_ad.len(),
                    x509.as_ptr(),
                    x509.len(),
                    cred_sig.as_ptr(),
                    cred_sig.len(),
                    cred_cdh.as_ptr(),
                    RP_ID.as_ptr(),
                ),
                h_assert_new(
                    as_cdh.as_ptr(),
                    RP_ID.as_ptr(),
                    as_sig.as_ptr(),
                    as_sig.len(),
                ),
                h_es256_pk_new(pk_xy.as_ptr(), pk_xy.len()),
            )
        };
        assert!(
            !cred.is_null() && !assert.is_null() && !pk.is_null(),
            "libfido2 refused the recorded inputs"
        );
        Peer { cred, assert, pk }
    }

    /// Every libfido2 operation succeeds on the recorded bytes (else the timing is moot).
    pub fn check(&self, cred_ad: &[u8], x509: &[u8], sig: &[u8], cdh: &[u8; 32], as_ad: &[u8]) {
        // SAFETY: `cred` is a live fido_cred_t from h_cred_new.
        assert_eq!(
            unsafe { h_cred_verify(self.cred) },
            FIDO_OK,
            "fido_cred_verify"
        );
        assert_eq!(cred_parse_verify_rc(cred_ad, x509, sig, cdh), FIDO_OK);
        assert_eq!(self.assert_verify_rc(as_ad), FIDO_OK, "fido_assert_verify");
    }

    /// `fido_cred_verify` on the set-up credential.
    pub fn cred_verify(&self) {
        // SAFETY: `cred` is a live fido_cred_t from h_cred_new.
        black_box(unsafe { h_cred_verify(black_box(self.cred)) });
    }

    /// `fido_assert_set_authdata_raw` + `fido_assert_verify(ES256)`.
    pub fn assert_verify(&self, authdata: &[u8]) {
        black_box(self.assert_verify_rc(authdata));
    }

    fn assert_verify_rc(&self, authdata: &[u8]) -> c_int {
        // SAFETY: `assert` and `pk` are live objects from h_assert_new / h_es256_pk_new,
        // used from this thread only; the slice outlives the call (libfido2 copies it).
        unsafe { h_assert_verify(self.assert, self.pk, authdata.as_ptr(), authdata.len()) }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: the objects came from the harness's constructors and are freed once.
        unsafe {
            h_cred_free(self.cred);
            h_assert_free(self.assert, self.pk);
        }
    }
}

/// A fresh credential from bytes: every setter, `fido_cred_verify`, free.
pub fn cred_parse_verify(authdata: &[u8], x509: &[u8], sig: &[u8], cdh: &[u8; 32]) {
    black_box(cred_parse_verify_rc(authdata, x509, sig, cdh));
}

fn cred_parse_verify_rc(authdata: &[u8], x509: &[u8], sig: &[u8], cdh: &[u8; 32]) -> c_int {
    // SAFETY: pointer/length pairs from live slices, a 32-byte cdh, a NUL-terminated RP id.
    unsafe {
        h_cred_parse_verify(
            authdata.as_ptr(),
            authdata.len(),
            x509.as_ptr(),
            x509.len(),
            sig.as_ptr(),
            sig.len(),
            cdh.as_ptr(),
            RP_ID.as_ptr(),
        )
    }
}
