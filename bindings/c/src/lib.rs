//! C ABI over the keysmith facade. Work in progress.
