//! Builds the libfido2 peer harness (harness/libfido2_peer.c) when Debian's
//! `libfido2-dev` (or any libfido2 with a pkg-config file) is installed, and sets
//! `cfg(libfido2)`; without it the bench compares keysmith's backends only.
//! `SIG_BENCH_NO_LIBFIDO2=1` skips the harness; so does a cross build.

use std::process::Command;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(libfido2)");
    println!("cargo:rerun-if-changed=harness/libfido2_peer.c");
    println!("cargo:rerun-if-env-changed=SIG_BENCH_NO_LIBFIDO2");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if std::env::var_os("SIG_BENCH_NO_LIBFIDO2").is_some() {
        return;
    }
    // The host's libfido2 serves native builds only (not the Windows cross-check).
    if std::env::var("TARGET").ok() != std::env::var("HOST").ok() {
        return;
    }
    let Some(flags) = pkg_config(&["--cflags", "--libs", "libfido2"]) else {
        println!(
            "cargo:warning=libfido2 not found (pkg-config libfido2): sig-bench is built \
             without the libfido2 comparison (Debian: apt-get install libfido2-dev)"
        );
        return;
    };
    let mut build = cc::Build::new();
    build.file("harness/libfido2_peer.c").warnings(true);
    for flag in flags.split_whitespace() {
        if let Some(dir) = flag.strip_prefix("-I") {
            build.include(dir);
        } else if let Some(dir) = flag.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        }
    }
    build.compile("libfido2_peer");
    for flag in flags.split_whitespace() {
        if let Some(lib) = flag.strip_prefix("-l") {
            println!("cargo:rustc-link-lib={lib}");
        }
    }
    println!("cargo:rustc-cfg=libfido2");
}

fn pkg_config(args: &[&str]) -> Option<String> {
    let out = Command::new("pkg-config").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
