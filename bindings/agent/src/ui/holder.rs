//! The holder's UI as the device half sees it ([`keysmith_device::HolderUi`]), over the
//! local UI channel: PIN requests, prompts, the sign-in address and the session code go
//! to the holder's UI process; the PIN comes back from it and goes to the key only (it
//! is never put in a message to the server, and never logged).

use std::cell::RefCell;
use std::io::{Read, Write};

use keysmith_device::{HolderUi, HolderUiError, Prompt};
use zeroize::Zeroizing;

use super::{PromptKind, ToUi, UiSession};
use crate::AgentError;

type Accept<S> = Box<dyn FnMut() -> Result<UiSession<S>, AgentError>>;

/// A [`HolderUi`] over the UI channel. Either already connected (a holder service: the
/// UI connected and asked for the operation), or connected on demand (a station with the
/// holder at the desk: the first PIN request waits for the holder's UI to connect).
///
/// The PIN typed is kept (zeroized) for the rest of this session, so a flow that needs it
/// twice (set, then a check) asks the holder once.
pub struct ChannelUi<S> {
    inner: RefCell<Inner<S>>,
}

struct Inner<S> {
    session: Option<UiSession<S>>,
    accept: Option<Accept<S>>,
    pin: Option<Zeroizing<String>>,
}

impl<S> std::fmt::Debug for ChannelUi<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let connected = self
            .inner
            .try_borrow()
            .map(|i| i.session.is_some())
            .unwrap_or(true);
        f.debug_struct("ChannelUi")
            .field("connected", &connected)
            .finish_non_exhaustive()
    }
}

fn holder_err(e: AgentError) -> HolderUiError {
    match e {
        AgentError::Cancelled => HolderUiError::Cancelled,
        e => {
            tracing::warn!(error = %e, "the holder's UI did not answer");
            HolderUiError::Unavailable
        }
    }
}

impl<S: Read + Write> ChannelUi<S> {
    /// Over a connection the UI already opened.
    pub fn connected(session: UiSession<S>) -> Self {
        ChannelUi {
            inner: RefCell::new(Inner {
                session: Some(session),
                accept: None,
                pin: None,
            }),
        }
    }

    /// Connected at the first PIN request, by `accept` (which waits for the UI).
    pub fn on_demand(accept: impl FnMut() -> Result<UiSession<S>, AgentError> + 'static) -> Self {
        ChannelUi {
            inner: RefCell::new(Inner {
                session: None,
                accept: Some(Box::new(accept)),
                pin: None,
            }),
        }
    }

    /// Sends `msg` to the UI when one is connected (prompts and notices are not worth
    /// waiting for a UI); `Ok(false)` when none is.
    pub fn notify(&self, msg: &ToUi) -> Result<bool, AgentError> {
        let mut inner = self.inner.borrow_mut();
        match inner.session.as_mut() {
            Some(s) => s.send(msg).map(|()| true),
            None => Ok(false),
        }
    }

    /// Tells a connected UI that the interaction ended (`ok`, with `message`), and
    /// forgets the PIN.
    pub fn done(&self, ok: bool, message: &str) {
        let mut inner = self.inner.borrow_mut();
        inner.pin = None;
        if let Some(s) = inner.session.as_mut() {
            let _ = s.send(&ToUi::Done {
                ok,
                message: message.to_owned(),
            });
        }
        // The next interaction (a station's next work) waits for a UI again.
        if inner.accept.is_some() {
            inner.session = None;
        }
    }

    fn ask(
        &self,
        ask: impl FnOnce(&mut UiSession<S>) -> Result<super::HolderPin, AgentError>,
    ) -> Result<Zeroizing<String>, HolderUiError> {
        let mut inner = self.inner.borrow_mut();
        if let Some(p) = &inner.pin {
            return Ok(p.clone());
        }
        if inner.session.is_none() {
            let accept = inner.accept.as_mut().ok_or(HolderUiError::Unavailable)?;
            tracing::info!("waiting for the holder's UI to connect");
            let session = accept().map_err(holder_err)?;
            inner.session = Some(session);
        }
        let session = inner.session.as_mut().ok_or(HolderUiError::Unavailable)?;
        let pin = ask(session).map_err(holder_err)?;
        let pin = Zeroizing::new(pin.expose().to_owned());
        inner.pin = Some(pin.clone());
        Ok(pin)
    }
}

/// The UI message for a device prompt, and a line for the agent's own log.
pub(crate) fn prompt_message(p: &Prompt) -> ToUi {
    let (prompt, sample, of, message) = match p {
        Prompt::TouchKey { .. } => (PromptKind::TouchKey, None, None, None),
        Prompt::HoldKey { .. } => (PromptKind::HoldKey, None, None, None),
        Prompt::EnrollFingerprint { number, of } => (
            PromptKind::FingerprintSample,
            Some(*number),
            Some(*of),
            None,
        ),
        Prompt::FingerprintSample { remaining, .. } => (
            PromptKind::FingerprintSample,
            None,
            None,
            Some(format!("{remaining} more samples")),
        ),
        Prompt::Replug(r) => (PromptKind::Replug, None, None, Some(r.message().to_owned())),
        other => (PromptKind::TouchKey, None, None, Some(format!("{other:?}"))),
    };
    ToUi::Prompt {
        prompt,
        sample,
        of,
        message,
    }
}

/// Shared, so the sign-in callback can show the address and the session code on the same
/// channel while the session runs (the state is behind a `RefCell`).
impl<S: Read + Write> HolderUi for &ChannelUi<S> {
    fn new_pin(&mut self, min_len: u32, confirm: bool) -> Result<Zeroizing<String>, HolderUiError> {
        let pin = self.ask(|s| s.ask_pin(min_len, confirm))?;
        if pin.chars().count() < min_len as usize {
            // A PIN kept from earlier in the session that this step finds too short.
            return Err(HolderUiError::Unavailable);
        }
        Ok(pin)
    }

    fn holder_pin(&mut self) -> Result<Zeroizing<String>, HolderUiError> {
        self.ask(UiSession::ask_current_pin)
    }

    fn prompt(&self, p: &Prompt) {
        tracing::info!(?p, "prompt");
        if let Err(e) = self.notify(&prompt_message(p)) {
            tracing::warn!(error = %e, "a prompt did not reach the holder's UI");
        }
    }
}
