//! The credential state machine (docs/lifecycle.md §1) and the planner built on it.
//!
//! [`next_state`] is the transition table. Decisions the table leaves open are settled so:
//!
//! | from | action | to | why |
//! |---|---|---|---|
//! | `Blank` | issue | `Issued` | |
//! | `Blank` | retire | `Retired` | a faulty key can be taken out of service before use |
//! | `Blank` | unregister | `Unregistered` | an import mistake can be forgotten |
//! | `Issued` | activate | `Active` | |
//! | `Issued` | revoke | `Revoked` | the pending registration is dropped; nothing exists at the IdP yet |
//! | `Active` | inactivate | `Inactive` | |
//! | `Active` | revoke | `Revoked` | |
//! | `Inactive` | revoke | `Revoked` | first step of reissue |
//! | `Revoked` | retire | `Retired` | |
//! | `Retired` | unregister | `Unregistered` | |
//! | `Unregistered` | issue | `Issued` | the key counts as rediscovered (`Blank`) and is issued at once, which is how reissue ends |
//!
//! Every other pair is refused with [`TransitionError::NotAllowed`], naming the state, the
//! action and what is allowed instead. An issued key is not inactivated: it has nothing at
//! the IdP to remove; it is revoked (or activated) instead.

mod plan;

use std::fmt;

use crate::model::{Action, CredentialState};

pub use plan::{plan, KeyFacts, OnIdpFailure, PendingFact, Plan, RegisteredFact, Step, UnixMillis};

/// Every action, in lifecycle order.
pub const ACTIONS: [Action; 6] = [
    Action::Issue,
    Action::Activate,
    Action::Inactivate,
    Action::Revoke,
    Action::Retire,
    Action::Unregister,
];

/// What the planner is asked to do: one [`Action`], or the composite reissue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Issue a blank key.
    Issue,
    /// Activate (initiate).
    Activate,
    /// Inactivate.
    Inactivate,
    /// Revoke.
    Revoke,
    /// Retire.
    Retire,
    /// Unregister.
    Unregister,
    /// Reissue: revoke → retire → unregister → issue, skipping the steps already taken.
    Reissue,
}

impl Operation {
    /// The stable lower-case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Issue => "issue",
            Operation::Activate => "activate",
            Operation::Inactivate => "inactivate",
            Operation::Revoke => "revoke",
            Operation::Retire => "retire",
            Operation::Unregister => "unregister",
            Operation::Reissue => "reissue",
        }
    }
}

impl From<Action> for Operation {
    fn from(a: Action) -> Self {
        match a {
            Action::Issue => Operation::Issue,
            Action::Activate => Operation::Activate,
            Action::Inactivate => Operation::Inactivate,
            Action::Revoke => Operation::Revoke,
            Action::Retire => Operation::Retire,
            Action::Unregister => Operation::Unregister,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operation refused for the key's state or recorded facts.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// The state machine has no such transition.
    #[error("cannot {operation} a key that is {state}; {}", allowed_text(*.state, .allowed))]
    NotAllowed {
        /// The key's recorded state.
        state: CredentialState,
        /// The operation refused.
        operation: Operation,
        /// The operations that are allowed from `state` instead.
        allowed: Vec<Operation>,
    },
    /// A pending registration's challenge expired before activation.
    #[error("challenge expired for passkey template {passkey_template} (expired at {expired_at_ms} ms, now {now_ms} ms): reissue the key")]
    ChallengeExpired {
        /// The passkey template whose pending registration expired.
        passkey_template: String,
        /// When it expired (Unix milliseconds).
        expired_at_ms: u64,
        /// The time of the attempt (Unix milliseconds).
        now_ms: u64,
    },
    /// The key is marked as needing reissue and cannot be activated.
    #[error("the key needs reissue (a pending registration expired); reissue it instead of activating it")]
    NeedsReissue,
    /// The operation talks to the key, so its facts must be given.
    #[error("{operation} needs the facts of the attached key (getInfo)")]
    DeviceFactsRequired {
        /// The operation.
        operation: Operation,
    },
}

fn allowed_text(state: CredentialState, allowed: &[Operation]) -> String {
    if allowed.is_empty() {
        format!("nothing is allowed from {state}")
    } else {
        let names: Vec<&str> = allowed.iter().map(|o| o.as_str()).collect();
        format!("allowed from {state}: {}", names.join(", "))
    }
}

/// The table itself: `None` where the transition does not exist.
const fn table(current: CredentialState, action: Action) -> Option<CredentialState> {
    use Action as A;
    use CredentialState as S;
    match (current, action) {
        (S::Blank, A::Issue) | (S::Unregistered, A::Issue) => Some(S::Issued),
        (S::Blank, A::Retire) | (S::Revoked, A::Retire) => Some(S::Retired),
        (S::Blank, A::Unregister) | (S::Retired, A::Unregister) => Some(S::Unregistered),
        (S::Issued, A::Activate) => Some(S::Active),
        (S::Issued, A::Revoke) | (S::Active, A::Revoke) | (S::Inactive, A::Revoke) => {
            Some(S::Revoked)
        }
        (S::Active, A::Inactivate) => Some(S::Inactive),
        _ => None,
    }
}

/// States reissue starts from.
pub(crate) const fn can_reissue(state: CredentialState) -> bool {
    matches!(
        state,
        CredentialState::Issued
            | CredentialState::Active
            | CredentialState::Inactive
            | CredentialState::Revoked
    )
}

/// The operations allowed from `state` (actions of the table, plus reissue where it applies).
pub fn allowed_operations(state: CredentialState) -> Vec<Operation> {
    let mut out: Vec<Operation> = ACTIONS
        .into_iter()
        .filter(|a| table(state, *a).is_some())
        .map(Operation::from)
        .collect();
    if can_reissue(state) {
        out.push(Operation::Reissue);
    }
    out
}

pub(crate) fn not_allowed(state: CredentialState, operation: Operation) -> TransitionError {
    TransitionError::NotAllowed {
        state,
        operation,
        allowed: allowed_operations(state),
    }
}

/// The state `action` leads to from `current`, or why it is refused.
pub fn next_state(
    current: CredentialState,
    action: Action,
) -> Result<CredentialState, TransitionError> {
    table(current, action).ok_or_else(|| not_allowed(current, action.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_can_leave_somehow() {
        for s in CredentialState::ALL {
            assert!(!allowed_operations(s).is_empty(), "{s} is a dead end");
        }
    }

    #[test]
    fn refusal_names_state_action_and_alternatives() {
        let e = next_state(CredentialState::Issued, Action::Inactivate).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot inactivate a key that is issued; allowed from issued: activate, revoke, reissue"
        );
    }
}
