//! entra-graph: see the workspace README. Work in progress.
