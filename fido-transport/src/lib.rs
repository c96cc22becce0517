//! fido-transport: see the workspace README. Work in progress.
