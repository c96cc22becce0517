//! The C ABI from C: `tests/c/lifecycle.c` is compiled with the system C compiler
//! against `include/keysmith.h`, linked to the built cdylib and run against the real
//! Entra emulator (in this process, on loopback) and a persistent software key. Under
//! valgrind too when it is installed. The committed header is checked against the
//! sources when cbindgen is installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use entra_graph::emulator::{Emulator, EmulatorConfig};
use keysmith_testkit::{session_config, softkey_spec, TempDir, KIM_ID};

/// Whether `tool --version` runs.
fn installed(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding the built `libkeysmith.so` (the test binary's `deps`).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    for dir in [
        deps.clone(),
        deps.parent().map(Path::to_path_buf).unwrap_or_default(),
    ] {
        if dir.join("libkeysmith.so").exists() {
            return dir;
        }
    }
    panic!("libkeysmith.so not found next to {}", exe.display());
}

fn compile(dir: &Path) -> PathBuf {
    compile_program(dir, "lifecycle")
}

/// Compiles `tests/c/NAME.c` (with POSIX threads) into `dir/NAME`.
fn compile_program(dir: &Path, name: &str) -> PathBuf {
    let exe = dir.join(name);
    let lib = lib_dir();
    let out = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"])
        .arg("-D_POSIX_C_SOURCE=200809L")
        .arg("-pthread")
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(crate_dir().join(format!("tests/c/{name}.c")))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .arg("-lkeysmith")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .output()
        .expect("gcc runs");
    assert!(
        out.status.success(),
        "gcc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// The session configuration: the standard test template (the C program issues with
/// its name, `test-standard`), SQLite in `dir`, the emulator as `contoso-entra`.
fn config(emulator: &Emulator, dir: &Path) -> String {
    session_config(emulator, dir, "c-test")
}

/// Runs the C program (optionally under a wrapper such as valgrind); returns stdout.
fn run_flow(exe: &Path, wrapper: &[&str], name: &str) -> String {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let dir = TempDir::new(&format!("c-{name}"));
    let spec = softkey_spec(&dir, "softkey.json");
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    // cargo's LD_LIBRARY_PATH names target/debug, which may hold an older uplifted copy
    // of the library: the fresh one (next to this test) comes first.
    let mut search =
        std::env::split_paths(&std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default())
            .collect::<Vec<_>>();
    search.insert(0, lib_dir());
    let out = cmd
        .env(
            "LD_LIBRARY_PATH",
            std::env::join_paths(search).expect("library path"),
        )
        .arg(config(&emulator, &dir))
        .arg(&spec)
        .output()
        .expect("C program runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "C program failed ({:?}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The IdP side effects really happened: registered by activation, deleted by the
    // (forced) revocation.
    assert!(
        emulator.methods(KIM_ID).is_empty(),
        "revoked passkey still at the IdP"
    );
    let _ = std::fs::remove_dir_all(&dir);
    stdout
}

fn value<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {name}= line in:\n{stdout}"))
}

#[test]
fn c_program_drives_the_whole_lifecycle() {
    let dir = TempDir::new("c-build");
    let exe = compile(&dir);
    let stdout = run_flow(&exe, &[], "flow");
    assert!(stdout.lines().any(|l| l == "ok"), "{stdout}");
    assert_eq!(value(&stdout, "version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(value(&stdout, "header_version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(value(&stdout, "wrong_pin_status"), "device");
    let wrong_pin: serde_json::Value =
        serde_json::from_str(value(&stdout, "wrong_pin_error")).expect("error JSON");
    assert_eq!(wrong_pin["kind"], "device", "{wrong_pin}");
    assert_eq!(wrong_pin["reason"], "pin_invalid", "{wrong_pin}");
    assert_eq!(wrong_pin["ctap_status"], 0x31, "{wrong_pin}");
    assert_eq!(wrong_pin["retries_left"], 7, "{wrong_pin}");
    let touches: u32 = value(&stdout, "touches").parse().expect("touch count");
    assert!(touches >= 2, "{stdout}");
    assert!(value(&stdout, "unknown_key_error").contains("no-such-key"));
    let audit: serde_json::Value =
        serde_json::from_str(value(&stdout, "audit_verify")).expect("audit check JSON");
    assert_eq!(audit["ok"], true, "{audit}");
    assert!(audit["records"].as_u64().unwrap_or(0) >= 3, "{audit}");
    assert!(!value(&stdout, "key_id").is_empty());
    assert_eq!(
        value(&stdout, "bulk_progress"),
        "2",
        "one progress call per row"
    );
}

/// One device used by two threads at once: the second issuance is refused with
/// `device_busy` and the first key stays whole; a serial with a line break or NUL is
/// refused with `serial_invalid` (`tests/c/misuse.c`).
#[test]
fn c_two_threads_on_one_device_and_bad_serials_are_refused() {
    let dir = TempDir::new("c-misuse");
    let exe = compile_program(&dir, "misuse");
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let mut search =
        std::env::split_paths(&std::env::var_os("LD_LIBRARY_PATH").unwrap_or_default())
            .collect::<Vec<_>>();
    search.insert(0, lib_dir());
    let out = Command::new(&exe)
        .env(
            "LD_LIBRARY_PATH",
            std::env::join_paths(search).expect("library path"),
        )
        .arg(config(&emulator, &dir))
        .arg(softkey_spec(&dir, "misuse.json"))
        .output()
        .expect("C program runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "C program failed ({:?}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(value(&stdout, "second_status"), "device");
    let busy: serde_json::Value =
        serde_json::from_str(value(&stdout, "second_error")).expect("error JSON");
    assert_eq!(busy["reason"], "device_busy", "{busy}");
    assert!(value(&stdout, "first_key_id").ends_with("-TH0"), "{stdout}");
    let serial: serde_json::Value =
        serde_json::from_str(value(&stdout, "serial_error")).expect("error JSON");
    assert_eq!(
        (&serial["kind"], &serial["reason"]),
        (&"usage".into(), &"serial_invalid".into()),
        "{serial}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Under CI (`CI=true`, where `.ci/run` installs the tool) a missing tool fails the test
/// instead of skipping it.
fn required_in_ci(tool: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{tool} is not installed, but CI=true: .ci/run installs it (apt-get / cargo install)"
    );
}

#[test]
fn c_program_is_clean_under_valgrind() {
    if !installed("valgrind") {
        required_in_ci("valgrind");
        eprintln!("valgrind not installed: skipped");
        return;
    }
    let dir = TempDir::new("c-valgrind-build");
    let exe = compile(&dir);
    let stdout = run_flow(
        &exe,
        &[
            "valgrind",
            "--quiet",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ],
        "valgrind",
    );
    assert!(stdout.lines().any(|l| l == "ok"), "{stdout}");
}

#[test]
fn committed_header_matches_the_sources() {
    if !installed("cbindgen") {
        required_in_ci("cbindgen");
        eprintln!("cbindgen not installed: header check skipped");
        return;
    }
    let dir = TempDir::new("c-header");
    let generated = dir.join("keysmith.h");
    let out = Command::new("cbindgen")
        .current_dir(crate_dir())
        .args([
            "--config",
            "cbindgen.toml",
            "--crate",
            "keysmith-c",
            "--output",
        ])
        .arg(&generated)
        .output()
        .expect("cbindgen runs");
    assert!(
        out.status.success(),
        "cbindgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = std::fs::read_to_string(&generated).expect("generated header");
    let committed =
        std::fs::read_to_string(crate_dir().join("include/keysmith.h")).expect("committed header");
    assert!(
        fresh == committed,
        "include/keysmith.h is stale: regenerate it with\n  cd bindings/c && cbindgen --config cbindgen.toml --crate keysmith-c --output include/keysmith.h"
    );
}

#[test]
fn header_compiles_as_c99_and_cpp() {
    let header = crate_dir().join("include/keysmith.h");
    let c = Command::new("gcc")
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-fsyntax-only",
            "-x",
            "c",
        ])
        .arg(&header)
        .output()
        .expect("gcc runs");
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    if installed("g++") {
        let cpp = Command::new("g++")
            .args([
                "-std=c++11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-fsyntax-only",
                "-x",
                "c++",
            ])
            .arg(&header)
            .output()
            .expect("g++ runs");
        assert!(
            cpp.status.success(),
            "{}",
            String::from_utf8_lossy(&cpp.stderr)
        );
    }
}

/// The naming rule of the crate documentation: every function in the header is
/// `ks_<noun>_<verb>[_<detail>]` with one of the ABI's nouns, or one of the three getters
/// named by a noun alone.
#[test]
fn header_functions_are_named_noun_then_verb() {
    const NOUNS: &[&str] = &[
        "session",
        "device",
        "key",
        "template",
        "idp",
        "user",
        "journal",
        "audit",
        "drift",
        "bulk",
        "pending",
        "log",
        "string",
        "status",
        "self_service",
        // The split deployment (docs/split-embedding.md).
        "device_half",
        "server_half",
        "wire",
        "bytes",
    ];
    const GETTERS: &[&str] = &["ks_version", "ks_last_error", "ks_last_error_json"];
    let header = std::fs::read_to_string(crate_dir().join("include/keysmith.h")).expect("header");
    let names: Vec<&str> = header
        .lines()
        .filter(|l| !l.starts_with([' ', '*', '/', '#']) && l.contains('('))
        .filter_map(|l| l.split('(').next()?.rsplit([' ', '*']).next())
        .filter(|n| n.starts_with("ks_"))
        .collect();
    assert!(names.len() > 30, "functions found: {names:?}");
    for name in names {
        if GETTERS.contains(&name) {
            continue;
        }
        let rest = &name["ks_".len()..];
        let noun_then_verb = NOUNS.iter().any(|noun| {
            rest.strip_prefix(noun)
                .and_then(|r| r.strip_prefix('_'))
                .is_some_and(|verb| !verb.is_empty())
        });
        assert!(noun_then_verb, "{name} is not ks_<noun>_<verb>");
    }
}
