//! Python module over the keysmith facade. Work in progress.
