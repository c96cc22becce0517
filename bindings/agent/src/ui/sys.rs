//! The few libc calls std does not wrap: the effective uid and a Unix socket peer's
//! credentials.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

/// The effective user id of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// The uid of the process at the other end of a connected Unix socket, as the kernel
/// recorded it at `connect` (or `listen`) time.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn peer_uid(sock: &impl AsRawFd) -> std::io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given; the fd is a
    // socket owned by `sock` for the duration of the call.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<libc::ucred>() {
        return Err(std::io::Error::other("short SO_PEERCRED answer"));
    }
    Ok(cred.uid)
}

/// The uid of the process at the other end of a connected Unix socket.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn peer_uid(sock: &impl AsRawFd) -> std::io::Result<u32> {
    let mut uid: libc::uid_t = libc::uid_t::MAX;
    let mut gid: libc::gid_t = libc::gid_t::MAX;
    // SAFETY: both out-pointers are valid for writes; the fd is a socket owned by `sock`.
    let rc = unsafe { libc::getpeereid(sock.as_raw_fd(), &mut uid, &mut gid) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(uid)
}
