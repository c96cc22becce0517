//! The blocking `Authenticator` client: CTAP 2.1 operations over any transport.
