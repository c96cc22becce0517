//! authenticatorLargeBlobs (0x0C).

use sha2::{Digest, Sha256};

use super::{map_or_empty, opt, req, Command, MapBuilder, ResponseData, CMD_LARGE_BLOBS};
use crate::cbor::Value;
use crate::Error;

/// authenticatorLargeBlobs request: either `get` a fragment or `set` one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LargeBlobs {
    /// 0x01 number of bytes to read.
    pub get: Option<u32>,
    /// 0x02 fragment to write.
    pub set: Option<Vec<u8>>,
    /// 0x03 byte offset.
    pub offset: u32,
    /// 0x04 total length of the serialized array (first `set` fragment only).
    pub length: Option<u32>,
    /// 0x05 PIN/UV auth parameter (writes); see [`LargeBlobs::pin_uv_auth_message`].
    pub pin_uv_auth_param: Option<Vec<u8>>,
    /// 0x06 PIN/UV auth protocol.
    pub pin_uv_auth_protocol: Option<u8>,
}

impl LargeBlobs {
    /// Read `count` bytes from `offset`.
    pub fn read(offset: u32, count: u32) -> Self {
        LargeBlobs {
            get: Some(count),
            set: None,
            offset,
            length: None,
            pin_uv_auth_param: None,
            pin_uv_auth_protocol: None,
        }
    }

    /// Write `fragment` at `offset` (`length` only with offset 0); add the PIN/UV
    /// auth fields before sending.
    pub fn write(offset: u32, fragment: Vec<u8>, length: Option<u32>) -> Self {
        LargeBlobs {
            get: None,
            set: Some(fragment),
            offset,
            length,
            pin_uv_auth_param: None,
            pin_uv_auth_protocol: None,
        }
    }

    /// The message the PIN/UV auth param of a write authenticates:
    /// 32×0xff || 0x0c 0x00 || uint32LE(offset) || SHA-256(set). `None` for a read.
    pub fn pin_uv_auth_message(&self) -> Option<Vec<u8>> {
        let set = self.set.as_ref()?;
        let mut m = vec![0xff; 32];
        m.extend([CMD_LARGE_BLOBS, 0x00]);
        m.extend(self.offset.to_le_bytes());
        m.extend(Sha256::digest(set));
        Some(m)
    }
}

impl Command for LargeBlobs {
    const CMD: u8 = CMD_LARGE_BLOBS;
    type Response = LargeBlobsResponse;

    fn params(&self) -> Option<Value> {
        Some(
            MapBuilder::new()
                .put_opt(1, self.get)
                .put_opt(2, self.set.clone())
                .put(3, self.offset)
                .put_opt(4, self.length)
                .put_opt(5, self.pin_uv_auth_param.clone())
                .put_opt(6, self.pin_uv_auth_protocol)
                .build(),
        )
    }

    fn decode_params(params: Option<&Value>) -> Result<Self, Error> {
        let m = map_or_empty(params, "largeBlobs")?;
        Ok(LargeBlobs {
            get: opt(&m, 1, |v| v.as_u32("largeBlobs.get"))?,
            set: opt(&m, 2, |v| v.as_bytes("largeBlobs.set").map(<[u8]>::to_vec))?,
            offset: req(&m, 3, "largeBlobs.offset", |v| {
                v.as_u32("largeBlobs.offset")
            })?,
            length: opt(&m, 4, |v| v.as_u32("largeBlobs.length"))?,
            pin_uv_auth_param: opt(&m, 5, |v| {
                v.as_bytes("largeBlobs.pinUvAuthParam").map(<[u8]>::to_vec)
            })?,
            pin_uv_auth_protocol: opt(&m, 6, |v| v.as_u8("largeBlobs.pinUvAuthProtocol"))?,
        })
    }
}

/// authenticatorLargeBlobs response (empty after a `set`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LargeBlobsResponse {
    /// 0x01 the fragment read.
    pub config: Option<Vec<u8>>,
}

impl ResponseData for LargeBlobsResponse {
    fn from_cbor(value: Option<&Value>) -> Result<Self, Error> {
        let m = map_or_empty(value, "largeBlobs response")?;
        Ok(LargeBlobsResponse {
            config: opt(&m, 1, |v| {
                v.as_bytes("largeBlobs.config").map(<[u8]>::to_vec)
            })?,
        })
    }
    fn to_cbor(&self) -> Option<Value> {
        self.config
            .as_ref()
            .map(|c| MapBuilder::new().put(1, c.clone()).build())
    }
}
