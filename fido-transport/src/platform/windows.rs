//! The Windows WebAuthn API (`webauthn.dll`), loaded at run time so a process on a
//! Windows without it (before 10 1903, or wine) still starts; and the elevation check.
//!
//! Only makeCredential and getAssertion exist here: `webauthn.dll` has no PIN, config,
//! reset, credential-management or bio call. Windows shows its own dialogs (PIN entry,
//! touch) on the foreground window; the caller supplies clientDataJSON, which Windows
//! hashes itself. Requests use the oldest structure versions that carry what is asked
//! (v1, or v4 for enterprise attestation), so every API version reads them.
#![allow(unsafe_code)]

use std::time::Duration;

use windows_sys::core::{HRESULT, PCWSTR};
use windows_sys::Win32::Foundation::{HMODULE, HWND};
use windows_sys::Win32::Networking::WindowsWebServices::{
    WEBAUTHN_ASSERTION, WEBAUTHN_AUTHENTICATOR_GET_ASSERTION_OPTIONS,
    WEBAUTHN_AUTHENTICATOR_MAKE_CREDENTIAL_OPTIONS, WEBAUTHN_CLIENT_DATA,
    WEBAUTHN_COSE_CREDENTIAL_PARAMETER, WEBAUTHN_COSE_CREDENTIAL_PARAMETERS, WEBAUTHN_CREDENTIAL,
    WEBAUTHN_CREDENTIALS, WEBAUTHN_CREDENTIAL_ATTESTATION, WEBAUTHN_EXTENSIONS,
    WEBAUTHN_RP_ENTITY_INFORMATION, WEBAUTHN_USER_ENTITY_INFORMATION,
};
use windows_sys::Win32::System::LibraryLoader::{
    GetProcAddress, LoadLibraryExW, LOAD_LIBRARY_SEARCH_SYSTEM32,
};

use super::{
    PlatformAssertion, PlatformCredential, PlatformGetAssertion, PlatformMakeCredential,
    UserVerification,
};
use crate::Error;

/// True if this process runs elevated (an administrator, or LocalSystem): the test
/// python-fido2's examples use (`IsUserAnAdmin`) to choose raw CTAP over the platform.
pub fn is_elevated() -> bool {
    // SAFETY: no arguments; returns a BOOL.
    unsafe { windows_sys::Win32::UI::Shell::IsUserAnAdmin() != 0 }
}

type MakeCredentialFn = unsafe extern "system" fn(
    HWND,
    *const WEBAUTHN_RP_ENTITY_INFORMATION,
    *const WEBAUTHN_USER_ENTITY_INFORMATION,
    *const WEBAUTHN_COSE_CREDENTIAL_PARAMETERS,
    *const WEBAUTHN_CLIENT_DATA,
    *const WEBAUTHN_AUTHENTICATOR_MAKE_CREDENTIAL_OPTIONS,
    *mut *mut WEBAUTHN_CREDENTIAL_ATTESTATION,
) -> HRESULT;
type GetAssertionFn = unsafe extern "system" fn(
    HWND,
    PCWSTR,
    *const WEBAUTHN_CLIENT_DATA,
    *const WEBAUTHN_AUTHENTICATOR_GET_ASSERTION_OPTIONS,
    *mut *mut WEBAUTHN_ASSERTION,
) -> HRESULT;
type FreeAttestationFn = unsafe extern "system" fn(*const WEBAUTHN_CREDENTIAL_ATTESTATION);
type FreeAssertionFn = unsafe extern "system" fn(*const WEBAUTHN_ASSERTION);
type ApiVersionFn = unsafe extern "system" fn() -> u32;
type ErrorNameFn = unsafe extern "system" fn(HRESULT) -> PCWSTR;

/// `webauthn.dll`, loaded from System32. It stays loaded for the life of the process
/// (as a static import would).
pub struct WebAuthnApi {
    make_credential: MakeCredentialFn,
    get_assertion: GetAssertionFn,
    free_attestation: FreeAttestationFn,
    free_assertion: FreeAssertionFn,
    error_name: Option<ErrorNameFn>,
    version: u32,
}

impl std::fmt::Debug for WebAuthnApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebAuthnApi")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A NUL-terminated UTF-16 copy of `s`.
pub(crate) fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// The text of a NUL-terminated UTF-16 string (empty for null).
///
/// # Safety
/// `p` is null or points to a NUL-terminated UTF-16 string.
unsafe fn from_wide(p: PCWSTR) -> String {
    if p.is_null() {
        return String::new();
    }
    let mut len = 0;
    // SAFETY: the caller guarantees a terminating NUL.
    while unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: `len` u16 values were just read.
    String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(p, len) })
}

/// A copy of `len` bytes at `p` (empty for null).
///
/// # Safety
/// `p` is null or valid for `len` bytes.
unsafe fn bytes(p: *const u8, len: u32) -> Vec<u8> {
    if p.is_null() || len == 0 {
        return Vec::new();
    }
    // SAFETY: the caller guarantees `len` readable bytes.
    unsafe { std::slice::from_raw_parts(p, len as usize) }.to_vec()
}

fn uv_requirement(uv: UserVerification) -> u32 {
    use windows_sys::Win32::Networking::WindowsWebServices as w;
    match uv {
        UserVerification::Required => w::WEBAUTHN_USER_VERIFICATION_REQUIREMENT_REQUIRED,
        UserVerification::Preferred => w::WEBAUTHN_USER_VERIFICATION_REQUIREMENT_PREFERRED,
        UserVerification::Discouraged => w::WEBAUTHN_USER_VERIFICATION_REQUIREMENT_DISCOURAGED,
    }
}

fn timeout_ms(t: Duration) -> u32 {
    u32::try_from(t.as_millis()).unwrap_or(u32::MAX)
}

/// The owned buffers of a credential list and the list pointing into them.
pub(crate) struct CredentialList {
    _ids: Vec<Vec<u8>>,
    _ty: Vec<u16>,
    entries: Vec<WEBAUTHN_CREDENTIAL>,
}

impl CredentialList {
    pub(crate) fn new(list: &[fido_core::commands::CredentialDescriptor]) -> Self {
        let ty = wide("public-key");
        let ids: Vec<Vec<u8>> = list.iter().map(|d| d.id.clone()).collect();
        let entries = ids
            .iter()
            .map(|id| WEBAUTHN_CREDENTIAL {
                dwVersion: windows_sys::Win32::Networking::WindowsWebServices::WEBAUTHN_CREDENTIAL_CURRENT_VERSION,
                cbId: id.len() as u32,
                pbId: id.as_ptr().cast_mut(),
                pwszCredentialType: ty.as_ptr(),
            })
            .collect();
        CredentialList {
            _ids: ids,
            _ty: ty,
            entries,
        }
    }

    pub(crate) fn raw(&self) -> WEBAUTHN_CREDENTIALS {
        WEBAUTHN_CREDENTIALS {
            cCredentials: self.entries.len() as u32,
            pCredentials: if self.entries.is_empty() {
                std::ptr::null_mut()
            } else {
                self.entries.as_ptr().cast_mut()
            },
        }
    }
}

/// Everything a makeCredential call points into, kept alive across the call.
pub(crate) struct MakeCredentialCall {
    _rp_id: Vec<u16>,
    _rp_name: Vec<u16>,
    _user_name: Vec<u16>,
    _user_display: Vec<u16>,
    _user_id: Vec<u8>,
    _client_data: Vec<u8>,
    _hash_alg: Vec<u16>,
    _cred_type: Vec<u16>,
    _params: Vec<WEBAUTHN_COSE_CREDENTIAL_PARAMETER>,
    _exclude: CredentialList,
    pub(crate) rp: WEBAUTHN_RP_ENTITY_INFORMATION,
    pub(crate) user: WEBAUTHN_USER_ENTITY_INFORMATION,
    pub(crate) params: WEBAUTHN_COSE_CREDENTIAL_PARAMETERS,
    pub(crate) client_data: WEBAUTHN_CLIENT_DATA,
    pub(crate) options: WEBAUTHN_AUTHENTICATOR_MAKE_CREDENTIAL_OPTIONS,
}

impl MakeCredentialCall {
    /// Builds the structures; refuses what the API version cannot carry.
    pub(crate) fn new(req: &PlatformMakeCredential, api_version: u32) -> Result<Self, Error> {
        use windows_sys::Win32::Networking::WindowsWebServices as w;
        if req.algorithms.is_empty() {
            return Err(Error::InvalidArgument(
                "makeCredential needs at least one algorithm".into(),
            ));
        }
        let options_version = if req.enterprise_attestation.is_some() {
            if api_version < 3 {
                return Err(Error::Unsupported(format!(
                    "enterprise attestation needs WebAuthn API version 3; this Windows has {api_version}"
                )));
            }
            4
        } else {
            1
        };
        let rp_id = wide(&req.rp.id);
        let rp_name = wide(req.rp.name.as_deref().unwrap_or(&req.rp.id));
        let name = req.user.name.clone().unwrap_or_default();
        let user_name = wide(&name);
        let user_display = wide(req.user.display_name.as_deref().unwrap_or(&name));
        let user_id = req.user.id.clone();
        let client_data = req.client_data_json.clone();
        let hash_alg = wide("SHA-256");
        let cred_type = wide("public-key");
        let params: Vec<WEBAUTHN_COSE_CREDENTIAL_PARAMETER> = req
            .algorithms
            .iter()
            .map(|&alg| {
                Ok(WEBAUTHN_COSE_CREDENTIAL_PARAMETER {
                    dwVersion: w::WEBAUTHN_COSE_CREDENTIAL_PARAMETER_CURRENT_VERSION,
                    pwszCredentialType: cred_type.as_ptr(),
                    lAlg: i32::try_from(alg).map_err(|_| {
                        Error::InvalidArgument(format!("COSE algorithm {alg} is out of range"))
                    })?,
                })
            })
            .collect::<Result<_, Error>>()?;
        let exclude = CredentialList::new(&req.exclude_list);
        let rp = WEBAUTHN_RP_ENTITY_INFORMATION {
            dwVersion: w::WEBAUTHN_RP_ENTITY_INFORMATION_CURRENT_VERSION,
            pwszId: rp_id.as_ptr(),
            pwszName: rp_name.as_ptr(),
            pwszIcon: std::ptr::null(),
        };
        let user = WEBAUTHN_USER_ENTITY_INFORMATION {
            dwVersion: w::WEBAUTHN_USER_ENTITY_INFORMATION_CURRENT_VERSION,
            cbId: user_id.len() as u32,
            pbId: user_id.as_ptr().cast_mut(),
            pwszName: user_name.as_ptr(),
            pwszIcon: std::ptr::null(),
            pwszDisplayName: user_display.as_ptr(),
        };
        let params_raw = WEBAUTHN_COSE_CREDENTIAL_PARAMETERS {
            cCredentialParameters: params.len() as u32,
            pCredentialParameters: params.as_ptr().cast_mut(),
        };
        let client = WEBAUTHN_CLIENT_DATA {
            dwVersion: w::WEBAUTHN_CLIENT_DATA_CURRENT_VERSION,
            cbClientDataJSON: client_data.len() as u32,
            pbClientDataJSON: client_data.as_ptr().cast_mut(),
            pwszHashAlgId: hash_alg.as_ptr(),
        };
        // SAFETY: an all-zero options structure is valid (null pointers, zero counts).
        let mut options: WEBAUTHN_AUTHENTICATOR_MAKE_CREDENTIAL_OPTIONS =
            unsafe { std::mem::zeroed() };
        options.dwVersion = options_version;
        options.dwTimeoutMilliseconds = timeout_ms(req.timeout);
        options.CredentialList = exclude.raw();
        options.Extensions = WEBAUTHN_EXTENSIONS {
            cExtensions: 0,
            pExtensions: std::ptr::null_mut(),
        };
        options.dwAuthenticatorAttachment = w::WEBAUTHN_AUTHENTICATOR_ATTACHMENT_CROSS_PLATFORM;
        options.bRequireResidentKey = i32::from(req.resident_key);
        options.dwUserVerificationRequirement = uv_requirement(req.user_verification);
        options.dwAttestationConveyancePreference =
            w::WEBAUTHN_ATTESTATION_CONVEYANCE_PREFERENCE_DIRECT;
        if let Some(ep) = req.enterprise_attestation {
            options.dwEnterpriseAttestation = u32::from(ep);
        }
        Ok(MakeCredentialCall {
            _rp_id: rp_id,
            _rp_name: rp_name,
            _user_name: user_name,
            _user_display: user_display,
            _user_id: user_id,
            _client_data: client_data,
            _hash_alg: hash_alg,
            _cred_type: cred_type,
            _params: params,
            _exclude: exclude,
            rp,
            user,
            params: params_raw,
            client_data: client,
            options,
        })
    }
}

/// Everything a getAssertion call points into, kept alive across the call.
pub(crate) struct GetAssertionCall {
    pub(crate) rp_id: Vec<u16>,
    _client_data: Vec<u8>,
    _hash_alg: Vec<u16>,
    _allow: CredentialList,
    pub(crate) client_data: WEBAUTHN_CLIENT_DATA,
    pub(crate) options: WEBAUTHN_AUTHENTICATOR_GET_ASSERTION_OPTIONS,
}

impl GetAssertionCall {
    pub(crate) fn new(req: &PlatformGetAssertion) -> Self {
        use windows_sys::Win32::Networking::WindowsWebServices as w;
        let client_data = req.client_data_json.clone();
        let hash_alg = wide("SHA-256");
        let allow = CredentialList::new(&req.allow_list);
        let client = WEBAUTHN_CLIENT_DATA {
            dwVersion: w::WEBAUTHN_CLIENT_DATA_CURRENT_VERSION,
            cbClientDataJSON: client_data.len() as u32,
            pbClientDataJSON: client_data.as_ptr().cast_mut(),
            pwszHashAlgId: hash_alg.as_ptr(),
        };
        // SAFETY: an all-zero options structure is valid (null pointers, zero counts).
        let mut options: WEBAUTHN_AUTHENTICATOR_GET_ASSERTION_OPTIONS =
            unsafe { std::mem::zeroed() };
        options.dwVersion = 1;
        options.dwTimeoutMilliseconds = timeout_ms(req.timeout);
        options.CredentialList = allow.raw();
        options.dwAuthenticatorAttachment = w::WEBAUTHN_AUTHENTICATOR_ATTACHMENT_CROSS_PLATFORM;
        options.dwUserVerificationRequirement = uv_requirement(req.user_verification);
        GetAssertionCall {
            rp_id: wide(&req.rp_id),
            _client_data: client_data,
            _hash_alg: hash_alg,
            _allow: allow,
            client_data: client,
            options,
        }
    }
}

impl WebAuthnApi {
    /// Loads `webauthn.dll` from System32. [`Error::Unsupported`] when it is absent
    /// (Windows before 10 1903, wine) or lacks the calls.
    pub fn load() -> Result<Self, Error> {
        let name = wide("webauthn.dll");
        // SAFETY: a NUL-terminated name; loading from System32 only.
        let module: HMODULE = unsafe {
            LoadLibraryExW(
                name.as_ptr(),
                std::ptr::null_mut(),
                LOAD_LIBRARY_SEARCH_SYSTEM32,
            )
        };
        if module.is_null() {
            return Err(Error::Unsupported(
                "the Windows WebAuthn API (webauthn.dll) is not available on this system".into(),
            ));
        }
        let proc = |sym: &[u8]| {
            // SAFETY: `sym` is a NUL-terminated ASCII name; `module` is loaded.
            unsafe { GetProcAddress(module, sym.as_ptr()) }.ok_or_else(|| {
                Error::Unsupported(format!(
                    "webauthn.dll lacks {}",
                    String::from_utf8_lossy(&sym[..sym.len() - 1])
                ))
            })
        };
        // SAFETY (each transmute): the exported functions have these signatures
        // (webauthn.h, as declared by windows-sys).
        let api = unsafe {
            WebAuthnApi {
                make_credential: std::mem::transmute::<
                    unsafe extern "system" fn() -> isize,
                    MakeCredentialFn,
                >(proc(b"WebAuthNAuthenticatorMakeCredential\0")?),
                get_assertion: std::mem::transmute::<
                    unsafe extern "system" fn() -> isize,
                    GetAssertionFn,
                >(proc(b"WebAuthNAuthenticatorGetAssertion\0")?),
                free_attestation: std::mem::transmute::<
                    unsafe extern "system" fn() -> isize,
                    FreeAttestationFn,
                >(proc(b"WebAuthNFreeCredentialAttestation\0")?),
                free_assertion: std::mem::transmute::<
                    unsafe extern "system" fn() -> isize,
                    FreeAssertionFn,
                >(proc(b"WebAuthNFreeAssertion\0")?),
                error_name: proc(b"WebAuthNGetErrorName\0").ok().map(|f| {
                    std::mem::transmute::<unsafe extern "system" fn() -> isize, ErrorNameFn>(f)
                }),
                version: match proc(b"WebAuthNGetApiVersionNumber\0") {
                    Ok(f) => {
                        std::mem::transmute::<unsafe extern "system" fn() -> isize, ApiVersionFn>(f)(
                        )
                    }
                    // Exported from API version 1 on; absent means the first release.
                    Err(_) => 1,
                },
            }
        };
        Ok(api)
    }

    /// The API version (`WEBAUTHN_API_VERSION_n`).
    pub fn api_version(&self) -> u32 {
        self.version
    }

    fn error(&self, hr: HRESULT, timeout: Duration) -> Error {
        let name = match self.error_name {
            // SAFETY: the API returns a static NUL-terminated string (or null).
            Some(f) => unsafe { from_wide(f(hr)) },
            None => String::new(),
        };
        super::map_hresult(hr as u32, name, timeout)
    }

    /// makeCredential through Windows: Windows asks for the PIN (or has the user set
    /// one) and the touch in its own dialog, on the foreground window.
    pub fn make_credential(
        &self,
        req: &PlatformMakeCredential,
    ) -> Result<PlatformCredential, Error> {
        let call = MakeCredentialCall::new(req, self.version)?;
        let mut out: *mut WEBAUTHN_CREDENTIAL_ATTESTATION = std::ptr::null_mut();
        // SAFETY: every pointer points into `call`, alive across the call; `out` receives
        // an allocation freed below with the API's own free function.
        let hr = unsafe {
            (self.make_credential)(
                foreground_window(),
                &call.rp,
                &call.user,
                &call.params,
                &call.client_data,
                &call.options,
                &mut out,
            )
        };
        if hr != 0 {
            return Err(self.error(hr, req.timeout));
        }
        if out.is_null() {
            return Err(Error::Platform {
                hresult: 0,
                name: "makeCredential returned no attestation".into(),
            });
        }
        // SAFETY: `out` is the API's allocation; only version-1 fields are read.
        let result = unsafe {
            PlatformCredential {
                attestation_object: bytes((*out).pbAttestationObject, (*out).cbAttestationObject),
                credential_id: bytes((*out).pbCredentialId, (*out).cbCredentialId),
                format: from_wide((*out).pwszFormatType),
            }
        };
        // SAFETY: freed once, with the API's function.
        unsafe { (self.free_attestation)(out) };
        Ok(result)
    }

    /// getAssertion through Windows (its own PIN / touch dialog).
    pub fn get_assertion(&self, req: &PlatformGetAssertion) -> Result<PlatformAssertion, Error> {
        let call = GetAssertionCall::new(req);
        let mut out: *mut WEBAUTHN_ASSERTION = std::ptr::null_mut();
        // SAFETY: every pointer points into `call`, alive across the call; `out` is freed
        // below with the API's own free function.
        let hr = unsafe {
            (self.get_assertion)(
                foreground_window(),
                call.rp_id.as_ptr(),
                &call.client_data,
                &call.options,
                &mut out,
            )
        };
        if hr != 0 {
            return Err(self.error(hr, req.timeout));
        }
        if out.is_null() {
            return Err(Error::Platform {
                hresult: 0,
                name: "getAssertion returned no assertion".into(),
            });
        }
        // SAFETY: `out` is the API's allocation; only version-1 fields are read.
        let result = unsafe {
            let user_id = bytes((*out).pbUserId, (*out).cbUserId);
            PlatformAssertion {
                credential_id: bytes((*out).Credential.pbId, (*out).Credential.cbId),
                auth_data: bytes((*out).pbAuthenticatorData, (*out).cbAuthenticatorData),
                signature: bytes((*out).pbSignature, (*out).cbSignature),
                user_id: (!user_id.is_empty()).then_some(user_id),
            }
        };
        // SAFETY: freed once, with the API's function.
        unsafe { (self.free_assertion)(out) };
        Ok(result)
    }
}

fn foreground_window() -> HWND {
    // SAFETY: no arguments; may return null (Windows then picks a window itself).
    unsafe { windows_sys::Win32::UI::WindowsAndMessaging::GetForegroundWindow() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fido_core::commands::{CredentialDescriptor, RpEntity, UserEntity};

    fn mc() -> PlatformMakeCredential {
        PlatformMakeCredential {
            client_data_json: br#"{"type":"webauthn.create","challenge":"AAAA","origin":"https://login.microsoft.com"}"#.to_vec(),
            rp: RpEntity {
                id: "login.microsoft.com".into(),
                name: Some("Microsoft".into()),
            },
            user: UserEntity {
                id: vec![1; 16],
                name: Some("kim@contoso.com".into()),
                display_name: Some("Kim".into()),
            },
            algorithms: vec![-7, -257],
            exclude_list: vec![
                CredentialDescriptor::public_key(vec![2; 64]),
                CredentialDescriptor::public_key(vec![3; 32]),
            ],
            resident_key: true,
            user_verification: UserVerification::Required,
            enterprise_attestation: None,
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn wide_strings_are_nul_terminated() {
        let w = wide("public-key");
        assert_eq!(w.last(), Some(&0));
        // SAFETY: `w` is NUL-terminated.
        assert_eq!(unsafe { from_wide(w.as_ptr()) }, "public-key");
        // SAFETY: null is allowed.
        assert_eq!(unsafe { from_wide(std::ptr::null()) }, "");
    }

    #[test]
    fn make_credential_structures_point_at_the_request() {
        let req = mc();
        let call = MakeCredentialCall::new(&req, 1).unwrap();
        assert_eq!(call.options.dwVersion, 1);
        assert_eq!(call.options.dwTimeoutMilliseconds, 60_000);
        assert_eq!(call.options.bRequireResidentKey, 1);
        assert_eq!(call.options.CredentialList.cCredentials, 2);
        assert_eq!(call.params.cCredentialParameters, 2);
        // SAFETY: the pointers point into `call`, alive here.
        unsafe {
            assert_eq!((*call.params.pCredentialParameters.add(1)).lAlg, -257);
            let first = &*call.options.CredentialList.pCredentials;
            assert_eq!(bytes(first.pbId, first.cbId), vec![2; 64]);
            assert_eq!(from_wide(first.pwszCredentialType), "public-key");
            assert_eq!(
                bytes(
                    call.client_data.pbClientDataJSON,
                    call.client_data.cbClientDataJSON
                ),
                req.client_data_json
            );
            assert_eq!(from_wide(call.client_data.pwszHashAlgId), "SHA-256");
            assert_eq!(from_wide(call.rp.pwszId), "login.microsoft.com");
            assert_eq!(from_wide(call.user.pwszName), "kim@contoso.com");
            assert_eq!(bytes(call.user.pbId, call.user.cbId), vec![1; 16]);
        }
    }

    #[test]
    fn enterprise_attestation_needs_api_version_3() {
        let mut req = mc();
        req.enterprise_attestation = Some(2);
        assert!(matches!(
            MakeCredentialCall::new(&req, 2),
            Err(Error::Unsupported(_))
        ));
        let call = MakeCredentialCall::new(&req, 3).unwrap();
        assert_eq!(call.options.dwVersion, 4);
        assert_eq!(call.options.dwEnterpriseAttestation, 2);
    }

    #[test]
    fn get_assertion_structures_point_at_the_request() {
        let req = PlatformGetAssertion {
            client_data_json: b"{}".to_vec(),
            rp_id: "login.microsoft.com".into(),
            allow_list: vec![],
            user_verification: UserVerification::Preferred,
            timeout: Duration::from_secs(30),
        };
        let call = GetAssertionCall::new(&req);
        assert_eq!(call.options.CredentialList.cCredentials, 0);
        assert!(call.options.CredentialList.pCredentials.is_null());
        // SAFETY: points into `call`.
        assert_eq!(
            unsafe { from_wide(call.rp_id.as_ptr()) },
            "login.microsoft.com"
        );
    }

    /// Under wine there is no webauthn.dll: the load fails with a typed error, and the
    /// capability report says so.
    #[test]
    fn load_and_detect_do_not_panic() {
        match WebAuthnApi::load() {
            Ok(api) => assert!(api.api_version() >= 1),
            Err(e) => assert!(matches!(e, Error::Unsupported(_)), "{e}"),
        }
        let caps = super::super::Capabilities::detect();
        assert_eq!(caps.ctap_raw, is_elevated());
    }
}
