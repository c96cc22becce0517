//! Integration tests: ctaphid.
