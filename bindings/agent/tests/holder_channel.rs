//! The holder's UI as the device half uses it, over a real socket pair: the PIN is asked
//! once and kept for the session, a check asks for the current PIN, prompts reach the UI,
//! a cancel is a cancel, and a station with no UI connected says so.
#![cfg(unix)]

use std::os::unix::net::UnixStream;

use keysmith_agent::ui::{ChannelUi, FromUi, HolderPin, PromptKind, ToUi, UiClient, UiSession};
use keysmith_agent::AgentError;
use keysmith_device::{HolderUi, HolderUiError, Prompt};
use zeroize::Zeroizing;

fn pair() -> (UiSession<UnixStream>, UiClient<UnixStream>) {
    let (a, b) = UnixStream::pair().unwrap();
    (UiSession::start(a, 0, "fp").unwrap(), UiClient::new(b))
}

#[test]
fn the_pin_is_asked_once_and_prompts_reach_the_ui() {
    let (session, mut client) = pair();
    let ui_thread = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while let Some(m) = client.recv().unwrap() {
            if let ToUi::NeedPin { min_len, .. } = &m {
                assert_eq!(*min_len, 6);
                client
                    .send(&FromUi::Pin {
                        pin: HolderPin::new(Zeroizing::new("123456".into())),
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
    let ui = ChannelUi::connected(session);
    let mut holder: &ChannelUi<UnixStream> = &ui;
    holder.prompt(&Prompt::TouchKey {
        op: "makeCredential",
    });
    assert_eq!(&*holder.new_pin(6, true).unwrap(), "123456");
    // The check later in the same session does not ask again.
    assert_eq!(&*holder.holder_pin().unwrap(), "123456");
    ui.done(true, "ok");
    let seen = ui_thread.join().unwrap();
    let asks = seen
        .iter()
        .filter(|m| matches!(m, ToUi::NeedPin { .. }))
        .count();
    assert_eq!(asks, 1, "{seen:?}");
    assert!(seen.iter().any(|m| matches!(
        m,
        ToUi::Prompt {
            prompt: PromptKind::TouchKey,
            ..
        }
    )));
    assert!(!format!("{ui:?}").contains("123456"));
}

#[test]
fn a_check_asks_for_the_current_pin_and_a_cancel_is_a_cancel() {
    let (session, mut client) = pair();
    let ui_thread = std::thread::spawn(move || {
        let _hello = client.recv().unwrap();
        let ask = client.recv().unwrap();
        client.send(&FromUi::Cancel).unwrap();
        ask
    });
    let ui = ChannelUi::connected(session);
    let mut holder: &ChannelUi<UnixStream> = &ui;
    assert_eq!(holder.holder_pin().unwrap_err(), HolderUiError::Cancelled);
    let ask = ui_thread.join().unwrap();
    assert!(
        matches!(ask, Some(ToUi::NeedPin { current: true, .. })),
        "{ask:?}"
    );
}

#[test]
fn a_station_without_a_ui_says_it_has_none() {
    let ui: ChannelUi<UnixStream> =
        ChannelUi::on_demand(|| Err(AgentError::UiProtocol("nobody connected".into())));
    let mut holder = &ui;
    assert_eq!(
        holder.new_pin(4, false).unwrap_err(),
        HolderUiError::Unavailable
    );
    // Prompts without a UI are not an error (the station's log has them).
    holder.prompt(&Prompt::HoldKey { op: "reset" });
}
