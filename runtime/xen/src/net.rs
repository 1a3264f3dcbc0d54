//! [`Net`]: netfront, a network device over a Xen `vif` (`public/io/netif.h`), for the direct
//! TCP/IP stack.
//!
//! The frontend shares two rings with the backend (Linux netback in dom0, which bridges the
//! vif): on TX each frame is copied into a page granted read-only for the one request, at
//! offset 0 (a frame never crosses a page: netback would disable the vif); on RX all 256 slots
//! hold a writable granted page, the backend copies each frame it receives into one, and the
//! slot is refilled once its frame has been consumed. Every response is copied out of the ring
//! once and checked (its id, offset, length and flags) before it is used; a backend that
//! answers requests it was not asked marks the device broken. The backend is signalled only
//! when it asked to be, and the frontend waits on the event channel after the ring's final
//! check.
//!
//! The logic is in [`Rings`], tested here against a simulated backend; [`Net`] adds the
//! XenBus handshake (`talk_to_netback`'s order) and the waits.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::poll_fn;
use core::task::Poll;

use mirage_devices::{Mac, NetError};

use crate::deadline;
use crate::events::Channel;
use crate::frontend::{Cause, ConnectError, Device, DeviceKind, Frontend, State};
use crate::grants::{self, Grants};
use crate::ring::{ring_size, FrontRing};
use crate::sys::page::{Page, PAGE_SIZE};

/// The size of a TX ring entry (`netif_tx_request`, the larger of the pair).
const TX_ENTRY: usize = 12;
/// The size of an RX ring entry (`netif_rx_request` / `netif_rx_response`).
const RX_ENTRY: usize = 8;
/// Entries per ring.
const SLOTS: usize = ring_size(TX_ENTRY) as usize;
const _: () = assert!(ring_size(TX_ENTRY) == 256 && ring_size(RX_ENTRY) == 256);

/// The Ethernet header.
const ETHERNET_HEADER: usize = 14;
/// The largest MTU without scatter-gather (netback caps the vif at it).
const MAX_MTU: usize = 1500;

/// `NETRXF_more_data`: the frame continues in the next response.
const RXF_MORE_DATA: u16 = 4;
/// `NETRXF_extra_info`: extra-info slots follow.
const RXF_EXTRA_INFO: u16 = 8;
/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows.
const EXTRA_MORE: u8 = 1;

/// An error in the backend's use of the rings: the device is unusable.
const BROKEN: NetError = NetError::Disconnected;
/// How long a frame waits for a transmit slot before the backend is taken as silent and the
/// frame dropped (a healthy netback frees slots in microseconds).
const SEND_TIMEOUT_NS: u64 = 5_000_000_000;

/// One request's page and its grant.
struct Buffer {
    page: Page,
    gref: u32,
}

/// `Rings` is netfront's state: the two rings, the buffers in flight, counters.
pub(crate) struct Rings {
    backend: u16,
    tx: FrontRing,
    rx: FrontRing,
    /// TX buffers by request id.
    tx_inflight: Vec<Option<Buffer>>,
    tx_free_ids: Vec<u16>,
    /// RX buffers by request id, which is the ring index modulo the size.
    rx_posted: Vec<Option<Buffer>>,
    /// Pages no longer granted, for reuse.
    spare: Vec<Page>,
    mtu: usize,
    broken: bool,
    /// Frames the backend reported as dropped or failed, or that arrived malformed.
    pub(crate) rx_errors: u64,
    /// TX requests the backend failed.
    pub(crate) tx_errors: u64,
}

impl Rings {
    /// `new(tx, rx, backend, mtu)` initialises the rings on pages `tx` and `rx`.
    pub(crate) fn new(tx: Page, rx: Page, backend: u16, mtu: usize) -> Rings {
        Rings {
            backend,
            tx: FrontRing::new(tx, TX_ENTRY),
            rx: FrontRing::new(rx, RX_ENTRY),
            tx_inflight: (0..SLOTS).map(|_| None).collect(),
            tx_free_ids: (0..SLOTS as u16).rev().collect(),
            rx_posted: (0..SLOTS).map(|_| None).collect(),
            spare: Vec::new(),
            mtu,
            broken: false,
            rx_errors: 0,
            tx_errors: 0,
        }
    }

    /// The ring pages, to grant to the backend.
    pub(crate) fn ring_pages(&self) -> (&Page, &Page) {
        (self.tx.page(), self.rx.page())
    }

    fn page(&mut self) -> Page {
        self.spare.pop().unwrap_or_else(Page::new)
    }

    /// `recycle(grants, buffer)` ends a buffer's grant and keeps its page for reuse (unless the
    /// backend still maps it: then the grants' quarantine keeps it).
    fn recycle(&mut self, grants: &mut Grants, buffer: Buffer) {
        if let Some(page) = grants.end(buffer.gref, buffer.page) {
            self.spare.push(page);
        }
    }

    /// `post_rx(grants)` fills every empty RX slot with a granted page and publishes the
    /// requests; it says whether to signal the backend.
    pub(crate) fn post_rx(&mut self, grants: &mut Grants) -> Result<bool, NetError> {
        if self.broken {
            return Err(BROKEN);
        }
        while self.rx.free_requests() > 0 {
            let id = self.rx.req_prod_pvt() as usize % SLOTS;
            if self.rx_posted[id].is_some() {
                // Still posted: a backend that skips responses; netback never does.
                self.broken = true;
                return Err(BROKEN);
            }
            let page = self.page();
            let gref = match grants.grant(&page, self.backend, false) {
                Ok(g) => g,
                Err(e) => {
                    self.spare.push(page);
                    // Out of grants: post what we have; consuming frames frees more.
                    log::warn!(target: "netfront", "RX refill stopped: {e}");
                    break;
                }
            };
            let mut entry = [0u8; RX_ENTRY];
            entry[0..2].copy_from_slice(&(id as u16).to_le_bytes());
            entry[4..8].copy_from_slice(&gref.to_le_bytes());
            self.rx.next_request(&entry);
            self.rx_posted[id] = Some(Buffer { page, gref });
        }
        Ok(self.rx.push_requests())
    }

    /// `recv(grants, buf)` takes the next frame the backend delivered into `buf` and is its
    /// length, or `None` if there is none (after the final check: a wait on the event channel
    /// will see the next). Slots are refilled after consuming.
    pub(crate) fn recv(
        &mut self,
        grants: &mut Grants,
        buf: &mut [u8],
    ) -> Result<(Option<Result<usize, NetError>>, bool), NetError> {
        if self.broken {
            return Err(BROKEN);
        }
        let mut got = None;
        while got.is_none() {
            if !self
                .rx
                .final_check_for_responses()
                .map_err(|_| self.broke())?
            {
                break;
            }
            got = self.take_frame(grants, buf)?;
        }
        let notify = self.post_rx(grants)?;
        Ok((got, notify))
    }

    fn broke(&mut self) -> NetError {
        self.broken = true;
        BROKEN
    }

    /// `next_response()` copies out the next RX response and takes its slot's buffer.
    fn next_response(&mut self) -> Result<([u8; RX_ENTRY], Buffer), NetError> {
        if self.rx.unconsumed().map_err(|_| self.broke())? == 0 {
            // The frame claimed more slots than were published.
            return Err(self.broke());
        }
        let slot = self.rx.rsp_cons() as usize % SLOTS;
        let mut r = [0u8; RX_ENTRY];
        self.rx.response(&mut r);
        let buffer = self.rx_posted[slot].take().ok_or_else(|| self.broke())?;
        Ok((r, buffer))
    }

    /// `take_frame(grants, buf)` consumes one frame's responses (one slot, or more if the
    /// backend chained extra-info or continuation slots, whose frame is dropped).
    fn take_frame(
        &mut self,
        grants: &mut Grants,
        buf: &mut [u8],
    ) -> Result<Option<Result<usize, NetError>>, NetError> {
        let slot = self.rx.rsp_cons() as usize % SLOTS;
        let (r, buffer) = self.next_response()?;
        let id = u16::from_le_bytes([r[0], r[1]]) as usize;
        let offset = u16::from_le_bytes([r[2], r[3]]) as usize;
        let flags = u16::from_le_bytes([r[4], r[5]]);
        let status = i16::from_le_bytes([r[6], r[7]]);
        if id != slot {
            self.recycle(grants, buffer);
            return Err(self.broke());
        }
        let mut extra = flags & RXF_EXTRA_INFO != 0;
        let mut more = flags & RXF_MORE_DATA != 0;
        let len = usize::try_from(status).unwrap_or(0);
        let fits = status > 0 && offset + len <= PAGE_SIZE;
        let result = if !fits || extra || more {
            None
        } else if len > buf.len() {
            Some(Err(NetError::BufferTooSmall { len }))
        } else {
            buffer.page.read(offset, &mut buf[..len]);
            Some(Ok(len))
        };
        self.recycle(grants, buffer);
        // Extra-info slots, then continuation slots: consumed, their frame dropped.
        while extra {
            let (e, b) = self.next_response()?;
            self.recycle(grants, b);
            extra = e[1] & EXTRA_MORE != 0;
        }
        while more {
            let (c, b) = self.next_response()?;
            self.recycle(grants, b);
            more = u16::from_le_bytes([c[4], c[5]]) & RXF_MORE_DATA != 0;
        }
        if result.is_none() {
            self.rx_errors += 1;
        }
        Ok(result)
    }

    /// `reap_tx(grants)` takes the TX responses: each request's buffer goes back.
    pub(crate) fn reap_tx(&mut self, grants: &mut Grants) -> Result<(), NetError> {
        if self.broken {
            return Err(BROKEN);
        }
        let n = self.tx.unconsumed().map_err(|_| self.broke())?;
        for _ in 0..n {
            let mut r = [0u8; 4];
            self.tx.response(&mut r);
            let id = u16::from_le_bytes([r[0], r[1]]) as usize;
            let status = i16::from_le_bytes([r[2], r[3]]);
            let Some(buffer) = self.tx_inflight.get_mut(id).and_then(Option::take) else {
                return Err(self.broke());
            };
            if status < 0 {
                self.tx_errors += 1;
            }
            self.recycle(grants, buffer);
            self.tx_free_ids.push(id as u16);
        }
        Ok(())
    }

    /// `send(grants, frame)` queues `frame` and says whether to signal the backend, or is
    /// `None` when the ring is full (wait for TX responses, then try again).
    pub(crate) fn send(
        &mut self,
        grants: &mut Grants,
        frame: &[u8],
    ) -> Result<Option<bool>, NetError> {
        if frame.len() > self.mtu + ETHERNET_HEADER || frame.len() > PAGE_SIZE {
            return Err(NetError::TooBig { len: frame.len() });
        }
        self.reap_tx(grants)?;
        if frame.len() < ETHERNET_HEADER {
            // netback drops runts; so do we, quietly, as a link would.
            return Ok(Some(false));
        }
        if self.tx.free_requests() == 0 || self.tx_free_ids.is_empty() {
            // Ask for the next TX response, then look again.
            if self
                .tx
                .final_check_for_responses()
                .map_err(|_| self.broke())?
            {
                return self.send(grants, frame);
            }
            return Ok(None);
        }
        let page = self.page();
        page.write(0, frame);
        let gref = match grants.grant(&page, self.backend, true) {
            Ok(g) => g,
            Err(e) => {
                self.spare.push(page);
                log::warn!(target: "netfront", "TX: {e}");
                return Err(NetError::Io { errno: 105 });
            }
        };
        let id = self.tx_free_ids.pop().unwrap_or_default();
        let mut entry = [0u8; TX_ENTRY];
        entry[0..4].copy_from_slice(&gref.to_le_bytes());
        // offset 0, flags 0 (the frame's checksums are complete)
        entry[8..10].copy_from_slice(&id.to_le_bytes());
        entry[10..12].copy_from_slice(&(frame.len() as u16).to_le_bytes());
        self.tx.next_request(&entry);
        self.tx_inflight[id as usize] = Some(Buffer { page, gref });
        Ok(Some(self.tx.push_requests()))
    }
}

/// The connected device: its rings, channel and grants of the ring pages.
struct Shared {
    rings: Rings,
    channel: Channel,
    mac: Mac,
}

/// `Net` is netfront: the domain's `vif` given to a network device of the graph by name (the
/// `i`-th network device of the image is `vif` `i`, as the generated `xl` config lists them).
#[derive(Clone)]
pub struct Net {
    shared: Rc<RefCell<Shared>>,
    mtu: usize,
}

impl core::fmt::Debug for Net {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Net({})", self.shared.borrow().mac)
    }
}

/// `parse_mac(text)` is the MAC address `aa:bb:cc:dd:ee:ff`.
fn parse_mac(text: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(Mac(mac))
}

impl Net {
    /// `connect(name)` connects the network device `name` of the image to its `vif`: the
    /// XenBus handshake with netback, each step bounded in time.
    pub async fn connect(name: &'static str) -> Result<Net, ConnectError> {
        Net::connect_device(Device::lookup(name, DeviceKind::Net)?).await
    }

    /// `connect_interface(name, interface)` connects the network device `name` to the
    /// domain's vif numbered `interface` (the `--interface` key of `netif`; `0` is the first).
    pub async fn connect_interface(
        name: &'static str,
        interface: &str,
    ) -> Result<Net, ConnectError> {
        Net::connect_device(Device::vif(name, interface)?).await
    }

    async fn connect_device(device: Device) -> Result<Net, ConnectError> {
        let name = device.name;
        let front = Frontend::find(device).await?;
        let err = |cause| device.error(cause);
        front.start().await?;
        if !front.backend_flag("feature-rx-copy").await? {
            return Err(err(Cause::Unsupported {
                feature: "feature-rx-copy",
            }));
        }
        let mac = match front.own_key("mac").await? {
            Some(text) => parse_mac(&text).ok_or_else(|| err(Cause::BadKey { key: "mac" }))?,
            None => return Err(err(Cause::BadKey { key: "mac" })),
        };
        let mtu = match front.own_key("mtu").await? {
            Some(text) => text
                .trim()
                .parse::<usize>()
                .map_err(|_| err(Cause::BadKey { key: "mtu" }))?,
            None => MAX_MTU,
        }
        .clamp(68, MAX_MTU);

        let rings = Rings::new(Page::new(), Page::new(), front.backend_id, mtu);
        let (tx, rx) = rings.ring_pages();
        let (tx_ref, rx_ref) = (front.grant(tx)?, front.grant(rx)?);
        let channel = front.channel()?;
        front
            .publish(&[
                ("tx-ring-ref", &alloc::format!("{tx_ref}")),
                ("rx-ring-ref", &alloc::format!("{rx_ref}")),
                ("event-channel", &alloc::format!("{}", channel.port())),
                ("request-rx-copy", "1"),
                ("feature-rx-notify", "1"),
                // smoltcp checks and fills checksums: the backend must not hand us frames
                // whose checksum is left blank.
                ("feature-no-csum-offload", "1"),
            ])
            .await?;
        // Linux netback connects on our Connected, not Initialised.
        front.set_state(State::Connected).await?;
        front.wait_backend(State::Connected).await?;

        let net = Net {
            shared: Rc::new(RefCell::new(Shared {
                rings,
                channel,
                mac,
            })),
            mtu,
        };
        net.refill()
            .map_err(|_| err(Cause::Grants(grants::GrantsError::Exhausted)))?;
        log::info!(target: "netfront", "{name}: vif {} connected, MAC {mac}, MTU {mtu}", device.id);
        Ok(net)
    }

    /// Posts RX buffers and signals the backend if it asked.
    fn refill(&self) -> Result<(), NetError> {
        let mut shared = self.shared.borrow_mut();
        let Shared { rings, channel, .. } = &mut *shared;
        let notify = grants::with(|g| rings.post_rx(g)).map_err(|_| BROKEN)??;
        if notify {
            channel.notify();
        }
        Ok(())
    }
}

impl mirage_devices::Network for Net {
    fn mac(&self) -> Mac {
        self.shared.borrow().mac
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    async fn send(&self, frame: &[u8]) -> Result<(), NetError> {
        // A backend that frees no transmit slot within `SEND_TIMEOUT_NS` is silent: the frame
        // is dropped with an error rather than the sender waiting forever.
        deadline::until(deadline::after(SEND_TIMEOUT_NS), |cx| {
            let mut shared = self.shared.borrow_mut();
            let Shared { rings, channel, .. } = &mut *shared;
            match grants::with(|g| rings.send(g, frame)) {
                Err(_) => Poll::Ready(Err(BROKEN)),
                Ok(Err(e)) => Poll::Ready(Err(e)),
                Ok(Ok(Some(notify))) => {
                    if notify {
                        channel.notify();
                    }
                    Poll::Ready(Ok(()))
                }
                Ok(Ok(None)) => {
                    channel.register(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
        .unwrap_or(Err(BROKEN))
    }

    async fn recv(&self, buf: &mut [u8]) -> Result<usize, NetError> {
        poll_fn(|cx| {
            let mut shared = self.shared.borrow_mut();
            let Shared { rings, channel, .. } = &mut *shared;
            match grants::with(|g| rings.recv(g, buf)) {
                Err(_) => Poll::Ready(Err(BROKEN)),
                Ok(Err(e)) => Poll::Ready(Err(e)),
                Ok(Ok((got, notify))) => {
                    if notify {
                        channel.notify();
                    }
                    match got {
                        Some(r) => Poll::Ready(r),
                        None => {
                            channel.register(cx.waker());
                            Poll::Pending
                        }
                    }
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::testing::{grants, set_mapped};
    use crate::ring::backend::{page_alias, BackRing};

    /// A simulated netback: it "copies" by reading the frontend's granted pages directly.
    struct Backend {
        tx: BackRing,
        rx: BackRing,
        /// RX requests taken and not yet answered: (id, gref).
        rx_slots: Vec<(u16, u32)>,
    }

    fn setup(g: &mut Grants) -> (Rings, Backend) {
        let mut rings = Rings::new(Page::new(), Page::new(), 0, 1500);
        let back = Backend {
            tx: BackRing::attach(&rings.tx),
            rx: BackRing::attach(&rings.rx),
            rx_slots: Vec::new(),
        };
        assert!(
            rings.post_rx(g).unwrap(),
            "the first post signals the backend"
        );
        (rings, back)
    }

    impl Backend {
        fn take_rx_requests(&mut self) {
            for r in self.rx.requests() {
                self.rx_slots.push((
                    u16::from_le_bytes([r[0], r[1]]),
                    u32::from_le_bytes([r[4], r[5], r[6], r[7]]),
                ));
            }
        }

        /// Delivers `frame` into the next posted buffer (found through the grant table: the
        /// test's frames are heap pages at the entry's frame number).
        fn deliver(&mut self, g: &Grants, rings: &Rings, frame: &[u8], flags: u16) {
            self.take_rx_requests();
            let (id, gref) = self.rx_slots.remove(0);
            let page = page_alias(&rings.rx_posted[id as usize].as_ref().unwrap().page);
            assert_eq!(rings.rx_posted[id as usize].as_ref().unwrap().gref, gref);
            assert_eq!(g.flags(gref) & 1, 1, "an RX buffer is granted");
            assert_eq!(g.flags(gref) & 4, 0, "an RX buffer is writable");
            page.write(0, frame);
            let mut rsp = [0u8; 8];
            rsp[0..2].copy_from_slice(&id.to_le_bytes());
            rsp[4..6].copy_from_slice(&flags.to_le_bytes());
            rsp[6..8].copy_from_slice(&(frame.len() as i16).to_le_bytes());
            self.rx.respond(&rsp);
            self.rx.push();
        }

        fn raw_rx(&mut self, rsp: [u8; 8]) {
            self.take_rx_requests();
            self.rx_slots.remove(0);
            self.rx.respond(&rsp);
            self.rx.push();
        }

        /// Takes every TX request: (id, gref, offset, size).
        fn take_tx(&mut self) -> Vec<(u16, u32, u16, u16)> {
            self.tx
                .requests()
                .iter()
                .map(|r| {
                    (
                        u16::from_le_bytes([r[8], r[9]]),
                        u32::from_le_bytes([r[0], r[1], r[2], r[3]]),
                        u16::from_le_bytes([r[4], r[5]]),
                        u16::from_le_bytes([r[10], r[11]]),
                    )
                })
                .collect()
        }

        fn complete_tx(&mut self, id: u16, status: i16) {
            let mut rsp = [0u8; 12];
            rsp[0..2].copy_from_slice(&id.to_le_bytes());
            rsp[2..4].copy_from_slice(&status.to_le_bytes());
            self.tx.respond(&rsp);
            self.tx.push();
        }
    }

    fn frame(n: usize, fill: u8) -> Vec<u8> {
        (0..n).map(|i| fill ^ i as u8).collect()
    }

    #[test]
    fn all_256_rx_slots_stay_posted_across_many_frames() {
        let mut g = grants(4);
        let (mut rings, mut back) = setup(&mut g);
        back.take_rx_requests();
        assert_eq!(back.rx_slots.len(), 256);
        let mut buf = [0u8; 1600];
        for i in 0..1000usize {
            let f = frame(60 + i % 1454, i as u8);
            back.deliver(&g, &rings, &f, 0);
            let (got, _) = rings.recv(&mut g, &mut buf).unwrap();
            assert_eq!(got, Some(Ok(f.len())));
            assert_eq!(&buf[..f.len()], &f[..]);
            back.take_rx_requests();
            assert_eq!(back.rx_slots.len(), 256, "a slot was not refilled");
        }
        assert_eq!(rings.recv(&mut g, &mut buf).unwrap().0, None);
        // Grants in use: 256 RX buffers only.
        assert_eq!(g.available(), 4 * 512 - 8 - 256);
    }

    #[test]
    fn a_burst_filling_the_ring_is_received_whole() {
        let mut g = grants(4);
        let (mut rings, mut back) = setup(&mut g);
        for i in 0..256usize {
            back.deliver(&g, &rings, &frame(100, i as u8), 0);
        }
        let mut buf = [0u8; 1514];
        for i in 0..256usize {
            let (got, _) = rings.recv(&mut g, &mut buf).unwrap();
            assert_eq!(got, Some(Ok(100)));
            assert_eq!(buf[0], i as u8);
        }
        assert_eq!(rings.recv(&mut g, &mut buf).unwrap().0, None);
    }

    #[test]
    fn bad_rx_responses_are_dropped_or_break_the_device() {
        let mut g = grants(4);
        let (mut rings, mut back) = setup(&mut g);
        let mut buf = [0u8; 1514];
        // Status -1 (error), 0, an offset past the page, chained extra info: dropped.
        let rsp = |id: u16, offset: u16, flags: u16, status: i16| {
            let mut r = [0u8; 8];
            r[0..2].copy_from_slice(&id.to_le_bytes());
            r[2..4].copy_from_slice(&offset.to_le_bytes());
            r[4..6].copy_from_slice(&flags.to_le_bytes());
            r[6..8].copy_from_slice(&status.to_le_bytes());
            r
        };
        back.raw_rx(rsp(0, 0, 0, -1));
        back.raw_rx(rsp(1, 0, 0, 0));
        back.raw_rx(rsp(2, 4000, 0, 200));
        back.raw_rx(rsp(3, 0, RXF_MORE_DATA, 100));
        back.raw_rx(rsp(4, 0, 0, 100));
        assert_eq!(rings.recv(&mut g, &mut buf).unwrap().0, None);
        assert_eq!(rings.rx_errors, 4);
        // A frame larger than the caller's buffer is consumed and reported.
        back.deliver(&g, &rings, &frame(1514, 1), 0);
        let (got, _) = rings.recv(&mut g, &mut [0u8; 100]).unwrap();
        assert_eq!(got, Some(Err(NetError::BufferTooSmall { len: 1514 })));
        // A response for another slot than its own: the backend is broken.
        back.raw_rx(rsp(77, 0, 0, 60));
        assert_eq!(rings.recv(&mut g, &mut buf), Err(NetError::Disconnected));
        assert_eq!(
            rings.send(&mut g, &frame(60, 0)),
            Err(NetError::Disconnected)
        );
    }

    #[test]
    fn tx_frames_go_out_read_only_at_offset_0_and_slots_come_back() {
        let mut g = grants(4);
        let (mut rings, mut back) = setup(&mut g);
        let before = g.available();
        assert_eq!(rings.send(&mut g, &frame(1514, 3)), Ok(Some(true)));
        let reqs = back.take_tx();
        assert_eq!(reqs.len(), 1);
        let (id, gref, offset, size) = reqs[0];
        assert_eq!((offset, size), (0, 1514));
        assert_eq!(g.flags(gref), 1 | 4, "TX pages are granted read-only");
        let page = page_alias(&rings.tx_inflight[id as usize].as_ref().unwrap().page);
        let mut sent = [0u8; 1514];
        page.read(0, &mut sent);
        assert_eq!(&sent[..], &frame(1514, 3)[..]);
        back.complete_tx(id, 0);
        rings.reap_tx(&mut g).unwrap();
        assert_eq!(g.available(), before);
        assert_eq!(g.flags(gref), 0);
        // Too big, or runts.
        assert_eq!(
            rings.send(&mut g, &frame(1515, 0)),
            Err(NetError::TooBig { len: 1515 })
        );
        assert_eq!(rings.send(&mut g, &frame(10, 0)), Ok(Some(false)));
        assert!(back.take_tx().is_empty());
    }

    #[test]
    fn a_full_tx_ring_waits_and_then_flows() {
        let mut g = grants(4);
        let (mut rings, mut back) = setup(&mut g);
        for i in 0..256 {
            assert!(rings.send(&mut g, &frame(60, i as u8)).unwrap().is_some());
        }
        assert_eq!(
            rings.send(&mut g, &frame(60, 0)),
            Ok(None),
            "a full ring took more"
        );
        let reqs = back.take_tx();
        assert_eq!(reqs.len(), 256);
        back.complete_tx(reqs[5].0, 0);
        assert!(rings.send(&mut g, &frame(60, 0)).unwrap().is_some());
        // A completion for an id never sent breaks the device.
        back.complete_tx(300, 0);
        assert_eq!(rings.reap_tx(&mut g), Err(NetError::Disconnected));
    }

    #[test]
    fn a_tx_page_the_backend_still_maps_is_never_reused() {
        let mut g = grants(4);
        let (mut rings, mut back) = setup(&mut g);
        rings.send(&mut g, &frame(60, 1)).unwrap();
        let (id, gref, _, _) = back.take_tx()[0];
        let addr = rings.tx_inflight[id as usize].as_ref().unwrap().page.addr();
        set_mapped(&g, gref, true);
        back.complete_tx(id, 0);
        rings.reap_tx(&mut g).unwrap();
        assert_eq!(g.quarantined(), 1);
        for i in 0..10 {
            rings.send(&mut g, &frame(60, i)).unwrap();
            for (id, _, _, _) in back.take_tx() {
                assert_ne!(
                    rings.tx_inflight[id as usize].as_ref().unwrap().page.addr(),
                    addr,
                    "a page still mapped by the backend was reused"
                );
                back.complete_tx(id, 0);
            }
        }
    }

    #[test]
    fn macs_parse() {
        assert_eq!(
            parse_mac("00:16:3e:0a:Bc:01"),
            Some(Mac([0, 0x16, 0x3e, 0x0a, 0xbc, 1]))
        );
        assert_eq!(parse_mac("00:16:3e:0a:bc"), None);
        assert_eq!(parse_mac("00:16:3e:0a:bc:01:02"), None);
        assert_eq!(parse_mac("zz:16:3e:0a:bc:01"), None);
    }
}
