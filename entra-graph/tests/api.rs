//! Integration tests of entra-graph: one binary, modules under `tests/api/`.

#[path = "api/fixtures.rs"]
mod fixtures;
