//! The conventions of ykman and fido2-token (issue 17 item 5): `--version`, per-command
//! help, short usage errors with a hint (exit 2), `--opt=value` and `--`, completions and
//! a man page from the same definition, `KEYSMITH_CONFIG` and the XDG default path, and
//! the bulk progress bar on a terminal only.

use std::path::Path;
use std::process::{Command, Output};

use entra_graph::emulator::{Emulator, EmulatorConfig};
use keysmith_testkit::TempDir;

use super::cli::{env, json_lines, path_str, USER};
use super::keysmith;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn version_and_per_command_help() {
    let version = format!("keysmith {}", keysmith_facade::version());
    for args in [&["--version"][..], &["-V"], &["version"]] {
        let out = keysmith().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert_eq!(stdout(&out).trim(), version, "{args:?}");
    }
    let out = keysmith().args(["issue", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let help = stdout(&out);
    assert!(
        help.contains("Usage: keysmith issue [OPTIONS] --template <T> --user <U>"),
        "{help}"
    );
    for option in [
        "--serial <S>",
        "--activate",
        "--pin-stdin",
        "--config <FILE>",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
    // Every command has its own help, also as `help COMMAND` and one level down.
    for args in [
        &["help", "bulk"][..],
        &["bulk", "-h"],
        &["self", "issue", "--help"],
        &["serve", "run", "--help"],
        &["device", "set-pin", "--help"],
    ] {
        let out = keysmith().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert!(stdout(&out).contains("Usage: keysmith "), "{args:?}");
    }
    // The long help keeps the reference the old usage text had.
    let out = keysmith().arg("--help").output().unwrap();
    for part in [
        "Exit codes:",
        "KEYSMITH_CONFIG",
        "RFC 3339",
        "softkey:STATEFILE",
    ] {
        assert!(stdout(&out).contains(part), "{part}");
    }
}

#[test]
fn a_bad_option_is_a_short_error_with_a_hint() {
    let out = keysmith()
        .args(["revoke", "K1", "--forse"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = stderr(&out);
    assert!(err.starts_with("keysmith: unknown flag --forse\n"), "{err}");
    assert!(
        err.contains("tip: a similar argument exists: '--force'"),
        "{err}"
    );
    assert!(err.contains("usage: keysmith revoke"), "{err}");
    assert!(
        err.contains("For more information, try 'keysmith revoke --help'."),
        "{err}"
    );
    assert!(
        err.lines().count() <= 5,
        "short, not the whole usage:\n{err}"
    );
    assert!(stdout(&out).is_empty());

    // A misspelt command: the hint names the right one.
    let out = keysmith().arg("isue").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tip: a similar subcommand exists: 'issue'"));

    // With --json, the JSON error object on stdout as for every other error.
    let out = keysmith()
        .args(["--json", "list", "--frobnicate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "usage");
    assert_eq!(v["error"]["exit_code"], 2);
    assert_eq!(v["error"]["message"], "unknown flag --frobnicate");

    // A missing required option names it.
    let out = keysmith()
        .args(["issue", "--template", "t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--user <U>"), "{}", stderr(&out));
}

#[test]
fn completions_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_keysmith()"),
        ("zsh", "#compdef keysmith"),
        ("fish", "complete -c keysmith"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = keysmith().args(["completions", shell]).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}: {out:?}");
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell}");
        for word in ["issue", "bulk", "reconcile", "expiring-before", "set-pin"] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
    }
    let out = keysmith().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A closed pipe (`| head -1`) is no panic.
    let mut child = keysmith()
        .args(["completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn the_man_page_has_every_command() {
    let out = keysmith().arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let page = stdout(&out);
    assert!(page.contains(".TH keysmith 1"), "{page}");
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
        "Exit codes:",
        "KEYSMITH_CONFIG",
    ] {
        assert!(page.contains(section), "{section}");
    }
    for command in [
        "issue",
        "activate",
        "revoke",
        "reissue",
        "bulk",
        "reconcile",
        "serve",
        "agent",
    ] {
        assert!(
            page.contains(&format!("keysmith\\-{command}(1)")),
            "{command} missing"
        );
    }
    // One page per command into a directory, for packagers.
    let dir = TempDir::new("cli-man");
    let out = keysmith()
        .args(["man", "--dir"])
        .arg(dir.join(""))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for page in [
        "keysmith.1",
        "keysmith-issue.1",
        "keysmith-bulk.1",
        "keysmith-self-issue.1",
    ] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap();
        assert!(text.contains(".TH "), "{page}");
    }
}

/// A minimal session configuration (SQLite beside it) at `path`.
fn write_config(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = format!(
        "pin_key = \"{}\"\n[repository]\nsqlite = \"keysmith.db\"\n",
        "11".repeat(32)
    );
    std::fs::write(path, text).unwrap();
}

/// `keysmith --json repository check` with only the given environment for the config.
fn check(args: &[&str], vars: &[(&str, &Path)]) -> Output {
    let mut cmd = keysmith();
    cmd.env_remove("KEYSMITH_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", "/nonexistent");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.args(args)
        .args(["--json", "repository", "check"])
        .output()
        .unwrap()
}

#[test]
fn config_from_flag_then_environment_then_xdg_default() {
    let dir = TempDir::new("cli-config-path");
    let env_cfg = dir.join("env/keysmith.toml");
    let xdg = dir.join("xdg");
    let home = dir.join("home");
    write_config(&env_cfg);
    write_config(&xdg.join("keysmith/config.toml"));
    write_config(&home.join(".config/keysmith/config.toml"));
    let absent = dir.join("absent.toml");
    let ok = |o: &Output| {
        assert_eq!(o.status.code(), Some(0), "{o:?}");
        assert!(stdout(o).contains("\"ok\":true"), "{o:?}");
    };
    let refused = |o: &Output| {
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        assert!(stdout(o).contains("absent.toml"), "{o:?}");
    };

    // KEYSMITH_CONFIG alone; the flag (as --config=FILE) over it.
    ok(&check(&[], &[("KEYSMITH_CONFIG", &env_cfg)]));
    let flag = format!("--config={}", absent.display());
    refused(&check(&[&flag], &[("KEYSMITH_CONFIG", &env_cfg)]));
    // The XDG default; KEYSMITH_CONFIG over it.
    ok(&check(&[], &[("XDG_CONFIG_HOME", &xdg)]));
    refused(&check(
        &[],
        &[("XDG_CONFIG_HOME", &xdg), ("KEYSMITH_CONFIG", &absent)],
    ));
    // ~/.config when XDG_CONFIG_HOME is unset.
    ok(&check(&[], &[("HOME", &home)]));
    // None of them: the command says what it needs.
    let out = check(&[], &[("XDG_CONFIG_HOME", &dir.join("empty"))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("KEYSMITH_CONFIG"), "{out:?}");
}

#[test]
fn double_dash_and_rfc3339_times() {
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("conventions", &emulator);
    // After `--`, a word that looks like a flag is an operand (here: a key id).
    let out = e.run(&["--json", "show", "--", "--weird-key"], None);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["reason"], "key_not_found", "{v}");
    // A pending registration's challenge (expires in one hour: the test template)
    // against RFC 3339 instants with offsets.
    let issued = e.json(
        &[
            "--json",
            "issue",
            "--template",
            "cli-standard",
            "--user",
            USER,
        ],
        None,
    );
    assert_eq!(issued["state"], "issued");
    let count = |t: &str| {
        let lines = json_lines(&e.run(&["--json", "list", "--expiring-before", t], None));
        lines.last().unwrap()["count"].as_u64().unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    let at = |minutes: i64, hours: i8| {
        let offset = time::UtcOffset::from_hms(hours, 0, 0).unwrap();
        (now + time::Duration::minutes(minutes))
            .to_offset(offset)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert_eq!(count(&at(90, 0)), 1, "{}", at(90, 0));
    assert_eq!(count(&at(90, -5)), 1, "{}", at(90, -5));
    // In 30 minutes, written at +05:00: read without its offset it would be 5h30 away
    // (after the expiry), so the key would be listed.
    assert_eq!(count(&at(30, 5)), 0, "{}", at(30, 5));
    assert_eq!(count(&at(30, -5)), 0, "{}", at(30, -5));
    let out = e.run(&["list", "--expiring-before", "2026-12-07T09:30:00"], None);
    assert_eq!(out.status.code(), Some(2), "no offset: {out:?}");
    assert!(stderr(&out).contains("RFC 3339"), "{out:?}");
}

/// `script` runs the command on a pseudo-terminal (util-linux, in every Debian).
fn on_a_terminal(args: &[String], dir: &Path, secret: &str) -> Output {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let line = std::iter::once(env!("CARGO_BIN_EXE_keysmith").to_owned())
        .chain(args.iter().cloned())
        .map(|a| quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    Command::new("script")
        .args(["-qec", &line, path_str(&dir.join("typescript"))])
        .env("KEYSMITH_TEST_SECRET", secret)
        .env("COLUMNS", "120")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs the command on a terminal")
}

#[test]
fn bulk_draws_a_progress_bar_on_a_terminal_only() {
    const ADELE: &str = "adelev@contoso.onmicrosoft.com";
    let emulator = Emulator::start(EmulatorConfig::default()).unwrap();
    let e = env("bar", &emulator);
    let args = |csv: &Path, base: &Path| -> Vec<String> {
        [
            "--config",
            path_str(&e.config),
            "--device",
            &format!("softkey:{}", base.display()),
            "bulk",
            "issue",
            path_str(csv),
            "--template",
            "cli-standard",
        ]
        .map(str::to_owned)
        .to_vec()
    };
    let csv = e.dir.join("tty.csv");
    std::fs::write(&csv, format!("user,serial\n{USER},T1\n{ADELE},T2\n")).unwrap();
    let out = on_a_terminal(&args(&csv, &e.dir.join("row-key")), &e.dir, &e.secret);
    let screen = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{screen}\n{}", stderr(&out));
    // The bar's last frame: rows of the total, the rate, the ETA; the row lines whole.
    assert!(screen.contains("2/2 rows"), "{screen}");
    assert!(screen.contains("ETA"), "{screen}");
    assert!(screen.contains("/s"), "{screen}");
    assert!(screen.contains("line 2: done"), "{screen}");
    assert!(screen.contains("line 3: done"), "{screen}");
    // The bar's frames never share a line with the rows or the summary: each starts a
    // line, or a line the bar cleared first (CR, erase line).
    let starts: Vec<&str> = screen
        .split(['\r', '\n'])
        .map(|l| l.trim_start_matches("\x1b[2K"))
        .collect();
    assert!(
        starts
            .iter()
            .any(|l| l.starts_with("bulk issue job ") && l.contains(": 2 done")),
        "{screen}"
    );
    assert!(
        starts.iter().any(|l| l.starts_with("line 2: done")),
        "{screen}"
    );
    assert!(
        starts.iter().any(|l| l.starts_with("line 3: done")),
        "{screen}"
    );

    // Not a terminal: the row lines only, no bar.
    let csv = e.dir.join("plain.csv");
    std::fs::write(&csv, format!("user,serial\n{USER},P1\n")).unwrap();
    let out = keysmith()
        .args(args(&csv, &e.dir.join("plain-key")))
        .env("KEYSMITH_TEST_SECRET", &e.secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&out).contains("line 2: done"));
    assert!(!stderr(&out).contains("ETA"), "{}", stderr(&out));
    assert!(!stderr(&out).contains('\r'), "{}", stderr(&out));
}
