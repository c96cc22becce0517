//! The in-process `SoftTransport`: requests, power cycles, cancelling a touch wait.

use super::*;

#[test]
fn soft_transport_carries_requests_and_power_cycles() {
    let h = harness();
    let mut t = SoftTransport::new(h.auth);
    let reply = t
        .transact(&encode_request(&GetInfo), &mut |_| {})
        .expect("transact");
    let info = decode_response::<GetInfo>(&reply).expect("info");
    assert_eq!(info.aaguid, AAGUID);
    assert!(t.power_cycle().is_ok());
    assert_eq!(t.describe(), "keysmith software authenticator (in-process)");
}

#[test]
fn transport_cancel_token_stops_a_delayed_touch() {
    let h = harness();
    let control = h.auth.control();
    control.set_presence(UserPresence::Delay(Duration::from_secs(30)));
    let mut t = SoftTransport::new(h.auth);
    let cancel = t.cancel_token();
    let req = encode_request(&Selection);
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        cancel.cancel();
    });
    let mut up_needed = 0;
    let start = std::time::Instant::now();
    let reply = t
        .transact(&req, &mut |p| {
            if p == Progress::UserPresenceNeeded {
                up_needed += 1;
            }
        })
        .expect("transact");
    canceller.join().expect("thread");
    assert_eq!(reply, vec![CtapStatus::KeepaliveCancel.to_u8()]);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(up_needed >= 2, "keepalives while waiting: {up_needed}");
    // The next transaction is not cancelled.
    control.set_presence(UserPresence::Approve);
    assert_eq!(t.transact(&req, &mut |_| {}).expect("transact"), vec![0x00]);
}

#[test]
fn handles_are_send() {
    fn send<T: Send>() {}
    send::<SoftAuthenticator>();
    send::<SoftTransport>();
    send::<PresenceControl>();
    send::<ManualClock>();
}
