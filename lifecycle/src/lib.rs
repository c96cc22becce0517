//! lifecycle: see the workspace README. Work in progress.
