//! # keysmith examples
//!
//! Short, runnable examples grouped by task, one per language binding:
//!
//! | task | Rust | C | Python |
//! |---|---|---|---|
//! | issue a key and activate it | `rust/issue_and_activate.rs` | `c/issue_and_activate.c` | `python/issue_and_activate.py` |
//! | the split: a station issues, the holder activates | `rust/split_server.rs` (server half) | `c/split_device.c` (device half) | `bindings/python/tests/test_split.py` |
//!
//! `scripts/run-examples.sh` builds and runs every one against the Entra emulator and a
//! software key. The Rust example starts the emulator in-process; the C and Python ones
//! take the session configuration (JSON) and a device spec on their command line.
//!
//! [`TEMPLATE`] is the credential template they all issue with.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The credential template the examples issue with (`examples/templates/standard.toml`).
pub const TEMPLATE: &str = include_str!("../templates/standard.toml");

/// The Rust guide, `docs/rust.md`: included here so that `cargo test --doc -p
/// keysmith-examples` compiles and runs each of its Rust blocks (the first issuance against
/// the emulator, errors, threads, logging). Its other blocks are run by
/// `scripts/run-doc-blocks.sh`.
#[doc = include_str!("../../docs/rust.md")]
pub mod rust_guide {}
