//! Integration tests: commands.
