#[cfg(feature = "verify-ring")]
mod ring_agrees;
mod vectors;
