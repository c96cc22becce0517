//! The UI channel over a Windows named pipe (review E11).
//!
//! No DACL can say "the interactive user": `INTERACTIVE` (S-1-5-4) matches every console
//! and Remote Desktop logon. So the service (LocalSystem):
//! - creates the pipe with `FILE_FLAG_FIRST_PIPE_INSTANCE` (if anyone else holds the
//!   name, creation fails instead of joining a squatter's pipe), one instance,
//!   `PIPE_REJECT_REMOTE_CLIENTS`, and a protected DACL for SYSTEM and the **logon SID of
//!   the UI's session** only (`D:P(A;;GA;;;SY)(A;;GRGW;;;<logon SID>)`), the session being
//!   the active console session unless given;
//! - checks each client: `GetNamedPipeClientSessionId` must be that session, and the
//!   client's token user (read under identification-level impersonation) must be that
//!   session's user.
//!
//! The UI connects with `SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION` (the service
//! may identify it, not act as it) and checks the server before sending anything:
//! `GetNamedPipeServerProcessId` → the process token's user must be LocalSystem, so a
//! squatter running as a normal user, which could create the name while the service is
//! down, never receives a PIN.
//!
//! Compile-checked (`cargo check --target x86_64-pc-windows-gnu`), not run in CI.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::windows::io::FromRawHandle;

use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, LocalFree, ERROR_PIPE_CONNECTED, GENERIC_READ, GENERIC_WRITE,
    HANDLE, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    EqualSid, GetTokenInformation, IsWellKnownSid, RevertToSelf, TokenGroups, TokenUser,
    WinLocalSystemSid, PSECURITY_DESCRIPTOR, PSID, SECURITY_ATTRIBUTES, TOKEN_GROUPS,
    TOKEN_INFORMATION_CLASS, TOKEN_QUERY, TOKEN_USER,
};
use windows_sys::Win32::Storage::FileSystem::{
    CreateFileW, FILE_FLAG_FIRST_PIPE_INSTANCE, OPEN_EXISTING, PIPE_ACCESS_DUPLEX,
    SECURITY_IDENTIFICATION, SECURITY_SQOS_PRESENT,
};
use windows_sys::Win32::System::Pipes::{
    ConnectNamedPipe, CreateNamedPipeW, GetNamedPipeClientSessionId, GetNamedPipeServerProcessId,
    ImpersonateNamedPipeClient, PIPE_READMODE_BYTE, PIPE_REJECT_REMOTE_CLIENTS, PIPE_TYPE_BYTE,
    PIPE_WAIT,
};
use windows_sys::Win32::System::RemoteDesktop::{WTSGetActiveConsoleSessionId, WTSQueryUserToken};
use windows_sys::Win32::System::Threading::{
    GetCurrentThread, OpenProcess, OpenProcessToken, OpenThreadToken,
    PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::{UiClient, UiSession};
use crate::AgentError;

/// The default pipe name.
pub const DEFAULT_PIPE: &str = r"\\.\pipe\keysmith-agent";

/// `SE_GROUP_LOGON_ID`: the group attribute marking a token's logon SID.
const SE_GROUP_LOGON_ID: u32 = 0xC000_0000;
/// No active console session.
const NO_SESSION: u32 = 0xFFFF_FFFF;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn last_error(what: &str) -> AgentError {
    AgentError::io(what, std::io::Error::last_os_error())
}

/// A handle closed on drop.
struct Owned(HANDLE);

impl Drop for Owned {
    fn drop(&mut self) {
        if !self.0.is_null() && self.0 != INVALID_HANDLE_VALUE {
            // SAFETY: the handle was opened by us and is closed exactly once.
            unsafe { CloseHandle(self.0) };
        }
    }
}

/// Token information in a buffer aligned for the structures it holds.
struct TokenInfo(Vec<u64>);

impl TokenInfo {
    fn read(token: HANDLE, class: TOKEN_INFORMATION_CLASS) -> Result<Self, AgentError> {
        let mut needed = 0u32;
        // SAFETY: a size query with a null buffer of length 0; `needed` is writable.
        unsafe { GetTokenInformation(token, class, std::ptr::null_mut(), 0, &mut needed) };
        if needed == 0 || needed > 64 * 1024 {
            return Err(last_error("GetTokenInformation (size)"));
        }
        let mut buf = vec![0u64; (needed as usize).div_ceil(8)];
        // SAFETY: `buf` is writable for `needed` bytes (rounded up) and 8-aligned.
        let ok = unsafe {
            GetTokenInformation(token, class, buf.as_mut_ptr().cast(), needed, &mut needed)
        };
        if ok == 0 {
            return Err(last_error("GetTokenInformation"));
        }
        Ok(TokenInfo(buf))
    }

    /// The SID of a `TokenUser` answer (points into the buffer).
    fn user_sid(&self) -> PSID {
        // SAFETY: the buffer holds a TOKEN_USER written by GetTokenInformation(TokenUser).
        unsafe { (*(self.0.as_ptr() as *const TOKEN_USER)).User.Sid }
    }

    /// The logon SID of a `TokenGroups` answer.
    fn logon_sid(&self) -> Option<PSID> {
        // SAFETY: the buffer holds a TOKEN_GROUPS written by GetTokenInformation
        // (TokenGroups): GroupCount entries follow the count, inside the buffer.
        unsafe {
            let groups = self.0.as_ptr() as *const TOKEN_GROUPS;
            let n = (*groups).GroupCount as usize;
            let first = std::ptr::addr_of!((*groups).Groups)
                as *const windows_sys::Win32::Security::SID_AND_ATTRIBUTES;
            (0..n)
                .map(|i| &*first.add(i))
                .find(|g| g.Attributes & SE_GROUP_LOGON_ID == SE_GROUP_LOGON_ID)
                .map(|g| g.Sid)
        }
    }
}

fn sid_string(sid: PSID) -> Result<String, AgentError> {
    let mut out: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: `sid` is a valid SID inside a live TokenInfo; `out` receives a LocalAlloc'd
    // string freed below.
    if unsafe { ConvertSidToStringSidW(sid, &mut out) } == 0 || out.is_null() {
        return Err(last_error("ConvertSidToStringSidW"));
    }
    // SAFETY: `out` is a NUL-terminated UTF-16 string from the call above.
    let s = unsafe {
        let len = (0..).take_while(|&i| *out.add(i) != 0).count();
        String::from_utf16_lossy(std::slice::from_raw_parts(out, len))
    };
    // SAFETY: allocated by ConvertSidToStringSidW with LocalAlloc.
    unsafe { LocalFree(out.cast()) };
    Ok(s)
}

/// The named-pipe end of the agent service.
#[derive(Debug)]
pub struct PipeServer {
    name: Vec<u16>,
    display: String,
    session: Option<u32>,
    agent_fingerprint: String,
}

impl PipeServer {
    /// A server for `name` admitting the user of `session` (`None`: the active console
    /// session at each accept).
    pub fn new(name: &str, session: Option<u32>, agent_fingerprint: &str) -> Self {
        PipeServer {
            name: wide(name),
            display: name.to_owned(),
            session,
            agent_fingerprint: agent_fingerprint.to_owned(),
        }
    }

    fn channel_err(&self, reason: impl Into<String>) -> AgentError {
        AgentError::UiChannel {
            path: self.display.clone().into(),
            reason: reason.into(),
        }
    }

    /// Creates the pipe, waits for one client, checks it, and starts a session.
    pub fn accept(&self) -> Result<UiSession<File>, AgentError> {
        // SAFETY: no arguments.
        let session = self
            .session
            .unwrap_or_else(|| unsafe { WTSGetActiveConsoleSessionId() });
        if session == NO_SESSION {
            return Err(self.channel_err("no interactive session is active"));
        }
        let mut user_token = Owned(std::ptr::null_mut());
        // SAFETY: `user_token.0` is writable; the call needs SE_TCB (LocalSystem).
        if unsafe { WTSQueryUserToken(session, &mut user_token.0) } == 0 {
            return Err(last_error(
                "WTSQueryUserToken (the agent must run as LocalSystem)",
            ));
        }
        let user = TokenInfo::read(user_token.0, TokenUser)?;
        let groups = TokenInfo::read(user_token.0, TokenGroups)?;
        let logon = groups
            .logon_sid()
            .ok_or_else(|| self.channel_err("the session's token has no logon SID"))?;
        let sddl = wide(&format!(
            "D:P(A;;GA;;;SY)(A;;GRGW;;;{})",
            sid_string(logon)?
        ));
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        // SAFETY: `sddl` is NUL-terminated; `sd` receives a LocalAlloc'd descriptor freed
        // after the pipe is created.
        if unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                sddl.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        } == 0
        {
            return Err(last_error("building the pipe's security descriptor"));
        }
        let sa = SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: sd,
            bInheritHandle: 0,
        };
        // SAFETY: `name` is NUL-terminated; `sa` and its descriptor live across the call.
        let pipe = Owned(unsafe {
            CreateNamedPipeW(
                self.name.as_ptr(),
                PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE,
                PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
                1,
                4096,
                4096,
                0,
                &sa,
            )
        });
        let create_err = std::io::Error::last_os_error();
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(sd) };
        if pipe.0 == INVALID_HANDLE_VALUE {
            return Err(self.channel_err(format!(
                "cannot create the pipe as its first instance (another process holds the name?): {create_err}"
            )));
        }
        // SAFETY: a valid pipe handle; synchronous (no OVERLAPPED).
        if unsafe { ConnectNamedPipe(pipe.0, std::ptr::null_mut()) } == 0 {
            // SAFETY: no arguments.
            if unsafe { GetLastError() } != ERROR_PIPE_CONNECTED {
                return Err(last_error("ConnectNamedPipe"));
            }
        }
        let mut client_session = NO_SESSION;
        // SAFETY: a connected pipe handle; the out-pointer is writable.
        if unsafe { GetNamedPipeClientSessionId(pipe.0, &mut client_session) } == 0 {
            return Err(last_error("GetNamedPipeClientSessionId"));
        }
        if client_session != session {
            return Err(AgentError::PeerRefused(format!(
                "the client is in session {client_session}, the UI session is {session}"
            )));
        }
        let client_user = {
            // SAFETY: a connected pipe handle; impersonation is reverted right after the
            // token is opened, on every path.
            if unsafe { ImpersonateNamedPipeClient(pipe.0) } == 0 {
                return Err(last_error("ImpersonateNamedPipeClient"));
            }
            let mut t = Owned(std::ptr::null_mut());
            // SAFETY: the current thread's impersonation token, opened as self.
            let ok = unsafe { OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, 1, &mut t.0) };
            // SAFETY: ends the impersonation begun above.
            let reverted = unsafe { RevertToSelf() };
            if reverted == 0 {
                // Continuing as the client would be a privilege drop at best; stop.
                std::process::abort();
            }
            if ok == 0 {
                return Err(last_error("OpenThreadToken"));
            }
            TokenInfo::read(t.0, TokenUser)?
        };
        // SAFETY: both SIDs point into live TokenInfo buffers.
        if unsafe { EqualSid(client_user.user_sid(), user.user_sid()) } == 0 {
            return Err(AgentError::PeerRefused(
                "the client is not the user of the UI session".into(),
            ));
        }
        let raw = pipe.0;
        std::mem::forget(pipe);
        // SAFETY: `raw` is an owned, open pipe handle; the File takes it over.
        let file = unsafe { File::from_raw_handle(raw) };
        UiSession::start(file, session, &self.agent_fingerprint)
    }
}

/// Connects the UI to the agent's pipe and checks that the server process runs as
/// LocalSystem before anything is exchanged.
pub fn connect(name: &str) -> Result<UiClient<File>, AgentError> {
    let w = wide(name);
    // SAFETY: `w` is NUL-terminated; no security attributes or template.
    let h = Owned(unsafe {
        CreateFileW(
            w.as_ptr(),
            GENERIC_READ | GENERIC_WRITE,
            0,
            std::ptr::null(),
            OPEN_EXISTING,
            SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
            std::ptr::null_mut(),
        )
    });
    if h.0 == INVALID_HANDLE_VALUE {
        return Err(last_error(&format!("connecting to {name}")));
    }
    let mut pid = 0u32;
    // SAFETY: a connected pipe handle; the out-pointer is writable.
    if unsafe { GetNamedPipeServerProcessId(h.0, &mut pid) } == 0 {
        return Err(last_error("GetNamedPipeServerProcessId"));
    }
    // SAFETY: opening another process for a limited query.
    let process = Owned(unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) });
    if process.0.is_null() {
        return Err(AgentError::PeerRefused(format!(
            "cannot inspect the pipe's server process {pid}"
        )));
    }
    let mut token = Owned(std::ptr::null_mut());
    // SAFETY: a process handle opened above; the out-pointer is writable.
    if unsafe { OpenProcessToken(process.0, TOKEN_QUERY, &mut token.0) } == 0 {
        return Err(AgentError::PeerRefused(format!(
            "cannot read the token of the pipe's server process {pid}"
        )));
    }
    let user = TokenInfo::read(token.0, TokenUser)?;
    // SAFETY: the SID points into the live TokenInfo buffer.
    if unsafe { IsWellKnownSid(user.user_sid(), WinLocalSystemSid) } == 0 {
        return Err(AgentError::PeerRefused(format!(
            "the process {pid} serving {name} does not run as LocalSystem: not the keysmith service"
        )));
    }
    let raw = h.0;
    std::mem::forget(h);
    // SAFETY: `raw` is an owned, open pipe handle; the File takes it over.
    Ok(UiClient::new(unsafe { File::from_raw_handle(raw) }))
}
