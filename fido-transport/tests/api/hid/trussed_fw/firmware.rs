//! The in-process trussed firmware behind a virtual USB bus.
//!
//! The firmware side is the code a Nitrokey 3 / Solo 2 runs: `fido-authenticator`
//! (trussed `virt` platform, RAM storage) behind `ctaphid-dispatch`, with the USB
//! class driver `usbd-ctaphid` doing the CTAPHID framing on a virtual USB bus whose
//! interrupt endpoints are connected to our [`ReportPipe`]. Nothing of fido-core is on
//! the firmware side: both ends of the 64-byte reports are independent.

use super::*;

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};

use ctaphid_dispatch::{Channel, Dispatch, Requester, DEFAULT_MESSAGE_SIZE};
use fido_authenticator::{Authenticator, Config, Conforming};
use trussed::backend::BackendId;
use trussed::platform::Platform as _;
use trussed_core::types::consent::Level;
use usb_device::bus::PollResult;
use usb_device::class_prelude::{EndpointAddress, EndpointType, UsbBus, UsbBusAllocator, UsbClass};
use usb_device::prelude::{UsbDeviceBuilder, UsbVidPid};
use usb_device::{UsbDirection, UsbError};
use usbd_ctaphid::CtapHid;

#[derive(Default)]
struct Wire {
    to_device: VecDeque<[u8; REPORT_LEN]>,
    to_host: VecDeque<Vec<u8>>,
}

/// A USB device controller without hardware: endpoint 0 swallows control traffic,
/// the other endpoints read from / write to the wire.
struct VirtualBus {
    wire: Arc<Mutex<Wire>>,
    next_index: usize,
}

impl UsbBus for VirtualBus {
    fn alloc_ep(
        &mut self,
        ep_dir: UsbDirection,
        ep_addr: Option<EndpointAddress>,
        _ep_type: EndpointType,
        _max_packet_size: u16,
        _interval: u8,
    ) -> usb_device::Result<EndpointAddress> {
        if let Some(a) = ep_addr {
            return Ok(a);
        }
        let a = EndpointAddress::from_parts(self.next_index, ep_dir);
        self.next_index += 1;
        Ok(a)
    }
    fn enable(&mut self) {}
    fn reset(&self) {}
    fn set_device_address(&self, _addr: u8) {}
    fn write(&self, ep_addr: EndpointAddress, buf: &[u8]) -> usb_device::Result<usize> {
        if ep_addr.index() != 0 {
            self.wire.lock().unwrap().to_host.push_back(buf.to_vec());
        }
        Ok(buf.len())
    }
    fn read(&self, ep_addr: EndpointAddress, buf: &mut [u8]) -> usb_device::Result<usize> {
        if ep_addr.index() == 0 {
            return Err(UsbError::WouldBlock);
        }
        match self.wire.lock().unwrap().to_device.pop_front() {
            Some(r) if buf.len() >= r.len() => {
                buf[..r.len()].copy_from_slice(&r);
                Ok(r.len())
            }
            Some(_) => Err(UsbError::BufferOverflow),
            None => Err(UsbError::WouldBlock),
        }
    }
    fn set_stalled(&self, _ep_addr: EndpointAddress, _stalled: bool) {}
    fn is_stalled(&self, _ep_addr: EndpointAddress) -> bool {
        false
    }
    fn suspend(&self) {}
    fn resume(&self) {}
    fn poll(&self) -> PollResult {
        PollResult::None
    }
}

/// The host end of the virtual USB cable.
pub(super) struct FirmwarePipe {
    to_fw: Sender<[u8; REPORT_LEN]>,
    from_fw: Receiver<Vec<u8>>,
}

impl ReportPipe for FirmwarePipe {
    fn write_report(&mut self, report: &[u8; REPORT_LEN]) -> Result<(), Error> {
        self.to_fw.send(*report).map_err(|_| Error::Hid {
            device: self.describe(),
            message: "firmware stopped".into(),
        })
    }
    fn read_report(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, Error> {
        match self.from_fw.recv_timeout(timeout) {
            Ok(r) => Ok(Some(r)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Error::Hid {
                device: self.describe(),
                message: "firmware stopped".into(),
            }),
        }
    }
    fn describe(&self) -> String {
        "trussed fido-authenticator (virt, usbd-ctaphid)".into()
    }
}

/// The USB side of the firmware: interrupt endpoints and the CTAPHID class, with
/// keepalives every 50 ms while the app works (UPNEEDED while the UI waits for a
/// touch), as the Nitrokey/Solo 2 runners do.
fn run_usb(
    requester: Requester<'_, DEFAULT_MESSAGE_SIZE>,
    rx: Receiver<[u8; REPORT_LEN]>,
    tx: Sender<Vec<u8>>,
    stop: &AtomicBool,
    waiting_for_touch: &AtomicBool,
) {
    let wire = Arc::new(Mutex::new(Wire::default()));
    let alloc = UsbBusAllocator::new(VirtualBus {
        wire: wire.clone(),
        next_index: 1,
    });
    // fido-authenticator handles CBOR and MSG only (in the Nitrokey firmware WINK
    // belongs to another app), so WINK is not advertised.
    let mut class = CtapHid::new(&alloc, requester, 0).implements_ctap2();
    // Building the device freezes the allocator and connects the endpoints.
    let _device = UsbDeviceBuilder::new(&alloc, UsbVidPid(0x20a0, 0x42b2)).build();
    let read_addr = class.pipe().read_address();
    let write_addr = class.pipe().write_address();
    let start = Instant::now();
    let mut last_keepalive = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        match rx.recv_timeout(Duration::from_millis(1)) {
            Ok(report) => {
                wire.lock().unwrap().to_device.push_back(report);
                class.endpoint_out(read_addr);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        class.check_timeout(start.elapsed().as_millis() as u32);
        class.poll();
        if last_keepalive.elapsed() >= Duration::from_millis(50) {
            last_keepalive = Instant::now();
            class.send_keepalive(waiting_for_touch.load(Ordering::SeqCst));
        }
        // Each completed IN transfer lets the class write its next packet.
        loop {
            let sent: Vec<Vec<u8>> = wire.lock().unwrap().to_host.drain(..).collect();
            if sent.is_empty() {
                break;
            }
            for r in sent {
                if tx.send(r).is_err() {
                    return;
                }
            }
            class.endpoint_in_complete(write_addr);
        }
    }
}

/// The platform UI: the user touches the key `delay` after it starts asking.
struct SlowTouch {
    delay: Duration,
    asked_at: Option<Instant>,
    waiting: Arc<AtomicBool>,
}

impl trussed::platform::UserInterface for SlowTouch {
    fn check_user_presence(&mut self) -> Level {
        let asked_at = *self.asked_at.get_or_insert_with(Instant::now);
        if asked_at.elapsed() >= self.delay {
            Level::Normal
        } else {
            std::thread::sleep(Duration::from_millis(1));
            Level::None
        }
    }
    fn set_status(&mut self, status: trussed::types::ui::Status) {
        let waiting = matches!(status, trussed::types::ui::Status::WaitingForUserPresence);
        if !waiting {
            self.asked_at = None;
        }
        self.waiting.store(waiting, Ordering::SeqCst);
    }
}

/// Runs `f` with a pipe to a fresh trussed FIDO authenticator whose user touches it
/// `touch_delay` after being asked. The app runs on its own thread, the USB class on
/// another, as on the real key (where the USB side runs in interrupts).
pub(super) fn with_trussed_key_touching_after<R>(
    touch_delay: Duration,
    f: impl FnOnce(FirmwarePipe) -> R,
) -> R {
    with_trussed_firmware(touch_delay, Config::new(DEFAULT_MESSAGE_SIZE), |pipe, _| {
        f(pipe)
    })
}

/// Runs `f` with a pipe to a fresh trussed FIDO authenticator built with
/// `fw_config`, and the handle that advances the platform's uptime clock (the
/// firmware's "time since power-up", which gates authenticatorReset).
fn with_trussed_firmware<R>(
    touch_delay: Duration,
    fw_config: Config,
    f: impl FnOnce(FirmwarePipe, trussed::virt::UptimeOffset) -> R,
) -> R {
    trussed::virt::with_platform(trussed::virt::StoreConfig::ram(), |mut platform| {
        let uptime = platform.user_interface().uptime_offset();
        let waiting = Arc::new(AtomicBool::new(false));
        platform.user_interface().set_inner(Box::new(SlowTouch {
            delay: touch_delay,
            asked_at: None,
            waiting: waiting.clone(),
        }));
        platform.run_client_with_backends(
            "fido",
            trussed_staging::virt::Dispatcher::default(),
            &[
                BackendId::Custom(trussed_staging::virt::BackendIds::StagingBackend),
                BackendId::Core,
            ],
            |client| {
                fn assert_trussed_requirements<T: fido_authenticator::TrussedRequirements>(_: &T) {}
                assert_trussed_requirements(&client);
                let mut authenticator = Authenticator::new(client, Conforming {}, fw_config);
                let channel: Channel<DEFAULT_MESSAGE_SIZE> = Channel::new();
                let (requester, responder) = channel.split().unwrap();
                let (to_fw, fw_rx) = mpsc::channel();
                let (fw_tx, from_fw) = mpsc::channel();
                let stop = AtomicBool::new(false);
                std::thread::scope(|s| {
                    let app = s.spawn(|| {
                        let mut dispatch = Dispatch::new(responder);
                        while !stop.load(Ordering::SeqCst) {
                            dispatch.poll(&mut [&mut authenticator]);
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    });
                    let usb = s.spawn(|| run_usb(requester, fw_rx, fw_tx, &stop, &waiting));
                    // Stops the firmware threads also when `f` panics, so a failing
                    // test fails instead of hanging in the scope's join.
                    struct StopOnDrop<'a>(&'a AtomicBool);
                    impl Drop for StopOnDrop<'_> {
                        fn drop(&mut self) {
                            self.0.store(true, Ordering::SeqCst);
                        }
                    }
                    let guard = StopOnDrop(&stop);
                    let result = f(FirmwarePipe { to_fw, from_fw }, uptime);
                    drop(guard);
                    app.join().unwrap();
                    usb.join().unwrap();
                    result
                })
            },
        )
    })
}

/// maxMsgSize of the firmware as built here (the ctaphid-dispatch buffer size).
pub(super) const DEFAULT_MSG_SIZE: u64 = DEFAULT_MESSAGE_SIZE as u64;

/// A fresh firmware (touch immediate) as configured by default, with the
/// largeBlobs command and largeBlobKey extension enabled if `large_blobs`, and
/// its uptime clock handle.
pub(super) fn with_fresh_firmware<R>(
    large_blobs: bool,
    f: impl FnOnce(FirmwarePipe, trussed::virt::UptimeOffset) -> R,
) -> R {
    let mut fw_config = Config::new(DEFAULT_MESSAGE_SIZE);
    if large_blobs {
        fw_config.large_blobs = Some(fido_authenticator::LargeBlobsConfig {
            location: trussed_core::types::Location::Internal,
        });
    }
    with_trussed_firmware(Duration::ZERO, fw_config, f)
}

/// Runs `f` with a pipe to a fresh trussed FIDO authenticator (touch is immediate).
pub(super) fn with_trussed_key<R>(f: impl FnOnce(FirmwarePipe) -> R) -> R {
    with_trussed_key_touching_after(Duration::ZERO, f)
}
