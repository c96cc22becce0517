//! The local UI channel over a Unix socket: a PIN crosses it and is never logged, a
//! second uid is refused (`SO_PEERCRED`), squatted and stale socket paths are handled.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener as StdListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use keysmith_agent::ui::unix::{connect, UiListener};
use keysmith_agent::ui::{FromUi, HolderPin, PromptKind, ToUi};
use keysmith_agent::AgentError;
use tracing_subscriber::layer::SubscriberExt;
use zeroize::Zeroizing;

const PIN: &str = "731946-pin";

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ks-ui-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(1)
        == 0
}

fn my_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap()
}

/// Records every tracing event's fields as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct V<'a>(&'a mut String);
        impl tracing::field::Visit for V<'_> {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={v:?} ", f.name()));
            }
        }
        let mut s = self.0.lock().unwrap();
        e.record(&mut V(&mut s));
        s.push('\n');
    }
}

#[test]
fn a_pin_crosses_the_channel_and_is_never_logged() {
    let d = dir("pin");
    let path = d.join("ui.sock");
    let listener = UiListener::bind(&path, &[my_uid()], "abcd 1234").unwrap();
    let p2 = path.clone();
    let agent_uid = my_uid();
    let ui = std::thread::spawn(move || {
        let mut c = connect(&p2, &[agent_uid]).unwrap();
        let mut seen = Vec::new();
        while let Some(m) = c.recv().unwrap() {
            if let ToUi::NeedPin { min_len, .. } = &m {
                assert_eq!(*min_len, 6);
                c.send(&FromUi::Pin {
                    pin: HolderPin::new(Zeroizing::new(PIN.into())),
                })
                .unwrap();
            }
            let done = matches!(m, ToUi::Done { .. });
            seen.push(m);
            if done {
                break;
            }
        }
        seen
    });
    let log = Capture::default();
    let sub = tracing_subscriber::registry().with(log.clone());
    let pin = tracing::subscriber::with_default(sub, || {
        let mut s = listener.accept().unwrap();
        assert_eq!(s.peer(), my_uid());
        s.send(&ToUi::SessionCode {
            code: "K7QF-2MXD".into(),
        })
        .unwrap();
        s.send(&ToUi::Prompt {
            prompt: PromptKind::TouchKey,
            sample: None,
            of: None,
            message: None,
        })
        .unwrap();
        let pin = s.ask_pin(6, true).unwrap();
        tracing::info!(?pin, "got the PIN");
        s.send(&ToUi::Done {
            ok: true,
            message: "PIN set".into(),
        })
        .unwrap();
        pin
    });
    assert_eq!(pin.expose(), PIN);
    let seen = ui.join().unwrap();
    assert!(matches!(seen[0], ToUi::Hello { version: 1, .. }));
    assert!(seen.contains(&ToUi::SessionCode {
        code: "K7QF-2MXD".into()
    }));
    let log = log.0.lock().unwrap().clone();
    assert!(
        log.contains("from UI") && log.contains("<redacted>"),
        "{log}"
    );
    assert!(!log.contains(PIN), "the PIN reached the log: {log}");
    drop(listener);
    assert!(!path.exists(), "the socket is removed on drop");
}

#[test]
fn squatted_live_and_stale_paths() {
    let d = dir("squat");
    let path = d.join("ui.sock");
    // A stale socket (its listener gone) is replaced.
    drop(StdListener::bind(&path).unwrap());
    assert!(path.exists());
    let l = UiListener::bind(&path, &[my_uid()], "fp").unwrap();
    // A live one is not taken over.
    match UiListener::bind(&path, &[my_uid()], "fp") {
        Err(AgentError::UiChannel { reason, .. }) => assert!(reason.contains("live"), "{reason}"),
        other => panic!("{other:?}"),
    }
    drop(l);
    // Anything that is not a socket is left alone and refused.
    std::fs::write(&path, b"squatter").unwrap();
    assert!(matches!(
        UiListener::bind(&path, &[my_uid()], "fp"),
        Err(AgentError::UiChannel { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"squatter");
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
    assert!(matches!(
        UiListener::bind(&path, &[my_uid()], "fp"),
        Err(AgentError::UiChannel { .. })
    ));
    std::fs::remove_file(&path).unwrap();
    // A directory others can write is refused.
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(
        UiListener::bind(&path, &[my_uid()], "fp"),
        Err(AgentError::UiChannel { .. })
    ));
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The UI refuses an agent end running as an unexpected uid.
    let _l = UiListener::bind(&path, &[my_uid()], "fp").unwrap();
    assert!(matches!(
        connect(&path, &[my_uid() + 4242]),
        Err(AgentError::PeerRefused(_))
    ));
}

#[test]
fn a_second_uid_is_refused() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to run the UI as uid 65534 (setpriv)");
        return;
    }
    let d = dir("uid");
    let path = d.join("ui.sock");
    let p2 = path.clone();
    let run_ui_as_nobody = move || {
        std::process::Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_keysmith-agent"))
            .args(["ui", "--socket"])
            .arg(&p2)
            .args(["--agent-uid", "0"])
            .output()
            .unwrap()
    };
    // Two allowed users: the socket is 0666, so uid 65534 connects and SO_PEERCRED refuses it.
    let l = UiListener::bind(&path, &[0, 4242], "fp").unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o666);
    let child = std::thread::spawn(run_ui_as_nobody.clone());
    match l.accept_one() {
        Err(AgentError::PeerRefused(m)) => assert!(m.contains("65534"), "{m}"),
        other => panic!("{other:?}"),
    }
    let out = child.join().unwrap();
    assert!(!out.status.success(), "{out:?}");
    drop(l);
    // One allowed user and the agent is root: the socket is handed to that user, 0600,
    // so another uid cannot even connect.
    let l = UiListener::bind(&path, &[4242], "fp").unwrap();
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 4242);
    let out = run_ui_as_nobody();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ermission denied"),
        "{out:?}"
    );
    drop(l);
}
