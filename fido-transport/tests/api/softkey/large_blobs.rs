//! Large blobs: reading and fragmented, checksummed writes.

use super::*;

fn serialized(body: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut v = body.to_vec();
    v.extend_from_slice(&Sha256::digest(body)[..16]);
    v
}

fn lb_write(
    offset: u32,
    data: &[u8],
    length: Option<u32>,
    t: Option<&PinUvAuthToken>,
) -> LargeBlobs {
    let mut w = LargeBlobs::write(offset, data.to_vec(), length);
    if let Some(t) = t {
        w.pin_uv_auth_protocol = Some(t.protocol().id());
        w.pin_uv_auth_param =
            Some(t.authenticate_message(&AuthMessage::LargeBlobs { offset, data }));
    }
    w
}

#[test]
fn large_blobs_read_and_fragmented_write() {
    let mut h = harness();
    let initial = h.send(&LargeBlobs::read(0, 100)).expect("read");
    assert_eq!(initial.config.expect("config").len(), 17);
    assert_eq!(h.set_pin(2, "1234"), None);
    let array = serialized(&[0x81, 0x43, 1, 2, 3]);
    // Needs a token with lbw.
    assert_eq!(
        h.status(&lb_write(0, &array[..10], Some(array.len() as u32), None)),
        Some(CtapStatus::PuatRequired)
    );
    let t = h
        .token(2, "1234", Some(Permissions::LARGE_BLOB_WRITE), None)
        .expect("token");
    assert_eq!(
        h.status(&lb_write(
            0,
            &array[..10],
            Some(array.len() as u32),
            Some(&t)
        )),
        None
    );
    // Out-of-sequence offset.
    assert_eq!(
        h.status(&lb_write(5, &array[10..], None, Some(&t))),
        Some(CtapStatus::InvalidSeq)
    );
    assert_eq!(h.status(&lb_write(10, &array[10..], None, Some(&t))), None);
    let back = h
        .send(&LargeBlobs::read(0, 1000))
        .expect("read")
        .config
        .expect("config");
    assert_eq!(back, array);
    let part = h
        .send(&LargeBlobs::read(3, 4))
        .expect("read")
        .config
        .expect("config");
    assert_eq!(part, array[3..7].to_vec());
    // A corrupt trailer is an integrity failure and keeps the old array.
    let mut bad = serialized(&[0x80]);
    bad[5] ^= 1;
    assert_eq!(
        h.status(&lb_write(0, &bad, Some(bad.len() as u32), Some(&t))),
        Some(CtapStatus::IntegrityFailure)
    );
    assert_eq!(
        h.send(&LargeBlobs::read(0, 1000)).expect("read").config,
        Some(array)
    );
    // Too large.
    assert_eq!(
        h.status(&lb_write(0, &[0; 17], Some(5000), Some(&t))),
        Some(CtapStatus::LargeBlobStorageFull)
    );
    assert_eq!(
        h.status(&LargeBlobs::read(1000, 1)),
        Some(CtapStatus::InvalidParameter)
    );
}
