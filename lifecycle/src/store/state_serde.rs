//! Serde for [`CredentialState`] by its stable name (until the model derives serde).

use crate::model::CredentialState;
use serde::{Deserialize, Deserializer, Serializer};

pub(super) fn serialize<S: Serializer>(s: &CredentialState, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<CredentialState, D::Error> {
    let name = String::deserialize(de)?;
    name.parse().map_err(serde::de::Error::custom)
}
