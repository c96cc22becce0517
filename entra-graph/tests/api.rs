//! Integration tests of entra-graph: one binary, modules under `tests/api/`.
//! The emulator tests need `--features emulator`.

mod api {
    pub mod fixtures;

    #[cfg(feature = "emulator")]
    pub mod authorize_code;

    #[cfg(feature = "emulator")]
    pub mod contract;
    #[cfg(feature = "emulator")]
    pub mod harness;
    #[cfg(feature = "emulator")]
    pub mod oidc;
    #[cfg(feature = "emulator")]
    pub mod oidc_id_tokens;
    #[cfg(feature = "emulator")]
    pub mod rejects;
    #[cfg(feature = "emulator")]
    pub mod soft_key;
    #[cfg(feature = "emulator")]
    pub mod tls;
}
