//! [`Block`]: blkfront, a block device over a Xen virtual disk (`public/io/blkif.h`).
//!
//! A transfer is cut into requests of at most 11 pages (one segment each), all submitted
//! before any is awaited, so up to the ring's 32 requests are in flight; each page is granted
//! for its request only (read-only for writes, writable for reads) and its grant ended when
//! the response came, before a read's data is copied out. Responses may come in any order and
//! are matched by id; an id the frontend did not send, or a response it already had, marks the
//! device broken. Sector numbers on the ring are in 512-byte units, as Linux blkback and
//! blkfront use them whatever the disk's logical sector size. When the backend offers
//! `feature-flush-cache`, a write returns only after a cache flush, so that what a write
//! returned for survives the domain.
//!
//! The ring logic is in [`Disk`], tested here against a simulated backend; [`Block`] adds the
//! XenBus handshake and the waits.

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::task::Poll;

use mirage_devices::{BlockError, BlockInfo};

use crate::deadline;
use crate::events::Channel;
use crate::frontend::{Cause, ConnectError, Device, DeviceKind, Frontend, State};
use crate::grants::{self, Grants};
use crate::ring::{ring_size, FrontRing};
use crate::sys::page::{Page, PAGE_SIZE};

/// The size of a ring entry (`blkif_request`, the larger of the pair).
const ENTRY: usize = 112;
/// Requests in flight at most: the ring's size.
const SLOTS: usize = ring_size(ENTRY) as usize;
const _: () = assert!(SLOTS == 32);
/// Segments (pages) per request (`BLKIF_MAX_SEGMENTS_PER_REQUEST`).
const MAX_SEGMENTS: usize = 11;
/// The unit of sector numbers on the ring.
const UNIT: usize = 512;

/// `BLKIF_OP_*`.
const OP_READ: u8 = 0;
const OP_WRITE: u8 = 1;
const OP_FLUSH: u8 = 3;
/// `BLKIF_RSP_EOPNOTSUPP`.
const RSP_EOPNOTSUPP: i16 = -2;
/// `VDISK_READONLY` in `info`.
const VDISK_READONLY: u32 = 4;

/// How long a request waits for a slot in the ring or for its response before the backend is
/// taken as gone: a healthy one answers in milliseconds, a busy host's disk in seconds.
const REQUEST_TIMEOUT_NS: u64 = 30_000_000_000;

/// `errno` reported for a failed request (EIO), or a broken backend (EPROTO).
const EIO: i32 = 5;
const EPROTO: i32 = 71;

/// One segment: a page, its grant, and how many bytes of it the request covers.
struct Segment {
    page: Page,
    gref: u32,
    len: usize,
}

/// A request in flight.
struct Request {
    segments: Vec<Segment>,
    status: Option<i16>,
    /// Its waiter is gone: release it when its response comes.
    abandoned: bool,
}

/// `Disk` is blkfront's ring state.
pub(crate) struct Disk {
    backend: u16,
    handle: u16,
    ring: FrontRing,
    inflight: Vec<Option<Request>>,
    free_ids: Vec<usize>,
    spare: Vec<Page>,
    broken: bool,
}

/// What a finished request gives back: its status and, for reads, its pages.
pub(crate) struct Done {
    status: i16,
    segments: Vec<(Page, usize)>,
}

impl Disk {
    /// `new(page, backend, handle)` initialises the ring on `page` for virtual device
    /// `handle`.
    pub(crate) fn new(page: Page, backend: u16, handle: u16) -> Disk {
        Disk {
            backend,
            handle,
            ring: FrontRing::new(page, ENTRY),
            inflight: (0..SLOTS).map(|_| None).collect(),
            free_ids: (0..SLOTS).rev().collect(),
            spare: Vec::new(),
            broken: false,
        }
    }

    /// `ring_page()` is the ring's page, to grant to the backend.
    pub(crate) fn ring_page(&self) -> &Page {
        self.ring.page()
    }

    fn broke(&mut self) -> BlockError {
        self.broken = true;
        BlockError::Io { errno: EPROTO }
    }

    /// `submit(grants, op, unit, data)` queues one request of `op` at 512-byte unit `unit`
    /// over `data.len()` pages' worth (`data` holds the bytes to write, or zeros to size a
    /// read), and says its id and whether to signal; `None` if the ring is full.
    pub(crate) fn submit(
        &mut self,
        grants: &mut Grants,
        op: u8,
        unit: u64,
        data: &[u8],
    ) -> Result<Option<(usize, bool)>, BlockError> {
        if self.broken {
            return Err(BlockError::Io { errno: EPROTO });
        }
        assert!(data.len() <= MAX_SEGMENTS * PAGE_SIZE && data.len().is_multiple_of(UNIT));
        if self.free_ids.is_empty() || self.ring.free_requests() == 0 {
            return Ok(None);
        }
        let mut segments = Vec::new();
        for chunk in data.chunks(PAGE_SIZE) {
            let page = self.spare.pop().unwrap_or_else(Page::new);
            if op == OP_WRITE {
                page.write(0, chunk);
            }
            match grants.grant(&page, self.backend, op == OP_WRITE) {
                Ok(gref) => segments.push(Segment {
                    page,
                    gref,
                    len: chunk.len(),
                }),
                Err(e) => {
                    self.spare.push(page);
                    self.release(grants, segments);
                    log::warn!(target: "blkfront", "{e}");
                    return Err(BlockError::Io { errno: EIO });
                }
            }
        }
        let id = self.free_ids.pop().unwrap_or_default();
        let mut entry = [0u8; ENTRY];
        entry[0] = op;
        entry[1] = segments.len() as u8;
        entry[2..4].copy_from_slice(&self.handle.to_le_bytes());
        entry[8..16].copy_from_slice(&(id as u64).to_le_bytes());
        entry[16..24].copy_from_slice(&unit.to_le_bytes());
        for (i, s) in segments.iter().enumerate() {
            let at = 24 + 8 * i;
            entry[at..at + 4].copy_from_slice(&s.gref.to_le_bytes());
            entry[at + 4] = 0;
            entry[at + 5] = (s.len / UNIT - 1) as u8;
        }
        self.ring.next_request(&entry);
        self.inflight[id] = Some(Request {
            segments,
            status: None,
            abandoned: false,
        });
        Ok(Some((id, self.ring.push_requests())))
    }

    /// Ends the segments' grants; their pages become spares (unless quarantined).
    fn release(
        &mut self,
        grants: &mut Grants,
        segments: Vec<Segment>,
    ) -> Option<Vec<(Page, usize)>> {
        let mut pages = Vec::new();
        let mut all = true;
        for s in segments {
            match grants.end(s.gref, s.page) {
                Some(page) => pages.push((page, s.len)),
                None => all = false,
            }
        }
        if all {
            Some(pages)
        } else {
            self.spare.extend(pages.into_iter().map(|(p, _)| p));
            None
        }
    }

    /// `reap(grants)` takes the responses the backend published; it says whether there were
    /// any (after the ring's final check, so a wait on the channel sees the next).
    pub(crate) fn reap(&mut self, grants: &mut Grants) -> Result<bool, BlockError> {
        if self.broken {
            return Err(BlockError::Io { errno: EPROTO });
        }
        let mut any = false;
        while self
            .ring
            .final_check_for_responses()
            .map_err(|_| self.broke())?
        {
            let mut r = [0u8; 16];
            self.ring.response(&mut r);
            any = true;
            let id = u64::from_le_bytes(r[0..8].try_into().unwrap_or([0xff; 8]));
            let status = i16::from_le_bytes([r[10], r[11]]);
            let Some(req) = usize::try_from(id)
                .ok()
                .and_then(|id| self.inflight.get_mut(id))
                .and_then(Option::as_mut)
                .filter(|req| req.status.is_none())
            else {
                return Err(self.broke());
            };
            req.status = Some(status);
            if req.abandoned {
                let _ = self.take(grants, id as usize);
            }
        }
        Ok(any)
    }

    /// `take(grants, id)` is request `id`'s outcome once its response came, its grants ended.
    pub(crate) fn take(
        &mut self,
        grants: &mut Grants,
        id: usize,
    ) -> Option<Result<Done, BlockError>> {
        let status = self.inflight[id].as_ref()?.status?;
        let req = self.inflight[id].take()?;
        self.free_ids.push(id);
        match self.release(grants, req.segments) {
            Some(segments) => Some(Ok(Done { status, segments })),
            // The backend still maps a page: its data cannot be trusted.
            None => Some(Err(BlockError::Io { errno: EIO })),
        }
    }

    /// `abandon(grants, id)` gives up on request `id` (its waiter was dropped): released now
    /// if done, else when its response comes.
    pub(crate) fn abandon(&mut self, grants: &mut Grants, id: usize) {
        if let Some(req) = self.inflight[id].as_mut() {
            req.abandoned = true;
            if req.status.is_some() {
                let _ = self.take(grants, id);
            }
        }
    }

    /// `recycle(done)` keeps a finished request's pages for reuse.
    fn recycle(&mut self, done: Done) {
        self.spare.extend(done.segments.into_iter().map(|(p, _)| p));
    }
}

/// The connected device.
struct Shared {
    disk: Disk,
    channel: Channel,
    flush: bool,
}

/// `Block` is blkfront: the domain's virtual disk given to a block device of the graph by
/// name (the `i`-th block device of the image is `xvd<a+i>`, as the generated `xl` config
/// lists them).
#[derive(Clone)]
pub struct Block {
    shared: Rc<RefCell<Shared>>,
    info: BlockInfo,
}

impl core::fmt::Debug for Block {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Block({:?})", self.info)
    }
}

/// Gives up the requests of a transfer whose future was dropped before they finished.
struct Abandon<'a> {
    shared: &'a RefCell<Shared>,
    ids: Vec<usize>,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let mut shared = self.shared.borrow_mut();
        let _ = grants::with(|g| {
            for &id in &self.ids {
                shared.disk.abandon(g, id);
            }
        });
    }
}

impl Block {
    /// `connect(name)` connects the block device `name` of the image to its virtual disk:
    /// the XenBus handshake with blkback, each step bounded in time.
    pub async fn connect(name: &'static str) -> Result<Block, ConnectError> {
        let device = Device::lookup(name, DeviceKind::Block)?;
        let front = Frontend::find(device).await?;
        let err = |cause| device.error(cause);
        front.start().await?;
        let disk = Disk::new(Page::new(), front.backend_id, device.id as u16);
        let ring_ref = front.grant(disk.ring_page())?;
        let channel = front.channel()?;
        front
            .publish(&[
                ("ring-ref", &alloc::format!("{ring_ref}")),
                ("event-channel", &alloc::format!("{}", channel.port())),
                ("protocol", "x86_64-abi"),
            ])
            .await?;
        front.set_state(State::Initialised).await?;
        front.wait_backend(State::Connected).await?;

        let number = |key: &'static str,
                      v: Option<alloc::string::String>|
         -> Result<Option<u64>, ConnectError> {
            v.map(|t| {
                t.trim()
                    .parse::<u64>()
                    .map_err(|_| err(Cause::BadKey { key }))
            })
            .transpose()
        };
        let units = number("sectors", front.backend_key("sectors").await?)?
            .ok_or_else(|| err(Cause::BadKey { key: "sectors" }))?;
        let sector_size =
            number("sector-size", front.backend_key("sector-size").await?)?.unwrap_or(UNIT as u64);
        if sector_size < UNIT as u64
            || !sector_size.is_power_of_two()
            || sector_size > PAGE_SIZE as u64
        {
            return Err(err(Cause::BadKey { key: "sector-size" }));
        }
        let info_bits = number("info", front.backend_key("info").await?)?.unwrap_or(0);
        let mode = front.backend_key("mode").await?;
        let read_write = info_bits & u64::from(VDISK_READONLY) == 0
            && mode.as_deref().is_none_or(|m| m.trim() != "r");
        let flush = front.backend_flag("feature-flush-cache").await?;
        front.set_state(State::Connected).await?;
        let info = BlockInfo {
            sector_size: sector_size as u32,
            sectors: units * UNIT as u64 / sector_size,
            read_write,
        };
        log::info!(
            target: "blkfront",
            "{name}: vbd {} connected, {} sectors of {} bytes, {}{}",
            device.id,
            info.sectors,
            info.sector_size,
            if read_write { "read-write" } else { "read-only" },
            if flush { ", flushed after writes" } else { "" }
        );
        Ok(Block {
            shared: Rc::new(RefCell::new(Shared {
                disk,
                channel,
                flush,
            })),
            info,
        })
    }

    /// `submit(op, unit, data)` waits for room in the ring and queues one request; a backend
    /// that frees no slot within [`REQUEST_TIMEOUT_NS`] is taken as gone.
    async fn submit(&self, op: u8, unit: u64, data: &[u8]) -> Result<usize, BlockError> {
        deadline::until(deadline::after(REQUEST_TIMEOUT_NS), |cx| {
            let mut shared = self.shared.borrow_mut();
            let Shared { disk, channel, .. } = &mut *shared;
            let step = grants::with(|g| {
                disk.reap(g)?;
                disk.submit(g, op, unit, data)
            });
            match step {
                Err(_) => Poll::Ready(Err(BlockError::Io { errno: EIO })),
                Ok(Err(e)) => Poll::Ready(Err(e)),
                Ok(Ok(Some((id, notify)))) => {
                    if notify {
                        channel.notify();
                    }
                    Poll::Ready(Ok(id))
                }
                Ok(Ok(None)) => {
                    channel.register(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
        .unwrap_or(Err(BlockError::Disconnected))
    }

    /// `finish(id)` waits for request `id`'s response; a backend that gives none within
    /// [`REQUEST_TIMEOUT_NS`] is taken as gone, and the request abandoned (its pages stay
    /// granted until a late response releases them).
    async fn finish(&self, id: usize) -> Result<Done, BlockError> {
        let response = deadline::until(deadline::after(REQUEST_TIMEOUT_NS), |cx| {
            let mut shared = self.shared.borrow_mut();
            let Shared { disk, channel, .. } = &mut *shared;
            let step = grants::with(|g| {
                disk.reap(g)?;
                Ok(disk.take(g, id))
            });
            match step {
                Err(_) => Poll::Ready(Err(BlockError::Io { errno: EIO })),
                Ok(Err(e)) => Poll::Ready(Err(e)),
                Ok(Ok(Some(done))) => Poll::Ready(done),
                Ok(Ok(None)) => {
                    channel.register(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await;
        response.unwrap_or_else(|deadline::TimedOut| {
            let mut shared = self.shared.borrow_mut();
            let _ = grants::with(|g| shared.disk.abandon(g, id));
            Err(BlockError::Disconnected)
        })
    }

    /// `transfer(op, sector, len, data)` runs one transfer: every request submitted, then
    /// every response awaited; it is the finished requests in order.
    async fn transfer(&self, op: u8, sector: u64, data: &[u8]) -> Result<Vec<Done>, BlockError> {
        let per_sector = u64::from(self.info.sector_size) / UNIT as u64;
        let mut guard = Abandon {
            shared: &self.shared,
            ids: Vec::new(),
        };
        let mut unit = sector * per_sector;
        for chunk in data.chunks(MAX_SEGMENTS * PAGE_SIZE) {
            guard.ids.push(self.submit(op, unit, chunk).await?);
            unit += (chunk.len() / UNIT) as u64;
        }
        let mut done = Vec::new();
        let mut failed = None;
        while !guard.ids.is_empty() {
            let id = guard.ids[0];
            let d = self.finish(id).await;
            guard.ids.remove(0);
            match d {
                Ok(d) if d.status == 0 => done.push(d),
                Ok(d) => {
                    failed.get_or_insert(BlockError::Io { errno: EIO });
                    self.shared.borrow_mut().disk.recycle(d);
                }
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => {
                for d in done {
                    self.shared.borrow_mut().disk.recycle(d);
                }
                Err(e)
            }
            None => Ok(done),
        }
    }

    /// `flush()` asks the backend to write its cache through, if it offers that.
    async fn flush(&self) -> Result<(), BlockError> {
        if !self.shared.borrow().flush {
            return Ok(());
        }
        let id = self.submit(OP_FLUSH, 0, &[]).await?;
        let done = self.finish(id).await?;
        let status = done.status;
        self.shared.borrow_mut().disk.recycle(done);
        match status {
            0 => Ok(()),
            RSP_EOPNOTSUPP => {
                log::warn!(target: "blkfront", "the backend refused a cache flush: not flushing");
                self.shared.borrow_mut().flush = false;
                Ok(())
            }
            _ => Err(BlockError::Io { errno: EIO }),
        }
    }
}

impl mirage_devices::Block for Block {
    fn info(&self) -> BlockInfo {
        self.info
    }

    async fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.info.check(sector, buf.len())?;
        let zeros = alloc::vec![0u8; buf.len()];
        let done = self.transfer(OP_READ, sector, &zeros).await?;
        let mut at = 0;
        for d in done {
            for (page, len) in &d.segments {
                page.read(0, &mut buf[at..at + len]);
                at += len;
            }
            self.shared.borrow_mut().disk.recycle(d);
        }
        Ok(())
    }

    async fn write(&self, sector: u64, data: &[u8]) -> Result<(), BlockError> {
        self.info.check(sector, data.len())?;
        if !self.info.read_write {
            return Err(BlockError::ReadOnly);
        }
        for d in self.transfer(OP_WRITE, sector, data).await? {
            self.shared.borrow_mut().disk.recycle(d);
        }
        self.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::testing::grants;
    use crate::ring::backend::{page_alias, BackRing};
    use alloc::collections::BTreeMap;
    use core::cell::Cell;

    /// A simulated blkback over a disk in memory; it finds the frontend's pages through the
    /// test's map of grant references.
    struct Backend {
        ring: BackRing,
        disk: Vec<u8>,
        pages: BTreeMap<u32, Page>,
        queue: Vec<[u8; ENTRY]>,
    }

    impl Backend {
        fn take(&mut self, disk: &Disk) {
            for r in self.ring.requests() {
                let mut e = [0u8; ENTRY];
                e.copy_from_slice(&r);
                let id = u64::from_le_bytes(e[8..16].try_into().unwrap()) as usize;
                let req = disk.inflight[id].as_ref().unwrap();
                for (i, s) in req.segments.iter().enumerate() {
                    let gref = u32::from_le_bytes(e[24 + 8 * i..28 + 8 * i].try_into().unwrap());
                    assert_eq!(gref, s.gref);
                    self.pages.insert(gref, page_alias(&s.page));
                }
                self.queue.push(e);
            }
        }

        /// Serves the queued requests, last first (out of order).
        fn serve(&mut self, g: &Grants) {
            while let Some(e) = self.queue.pop() {
                let op = e[0];
                let nseg = e[1] as usize;
                assert_eq!(u16::from_le_bytes([e[2], e[3]]), 51712);
                let mut at = u64::from_le_bytes(e[16..24].try_into().unwrap()) as usize * UNIT;
                let mut status = 0i16;
                for i in 0..nseg {
                    let s = &e[24 + 8 * i..32 + 8 * i];
                    let gref = u32::from_le_bytes(s[0..4].try_into().unwrap());
                    let (first, last) = (s[4] as usize, s[5] as usize);
                    assert!(first <= last && last <= 7);
                    let len = (last + 1 - first) * UNIT;
                    let page = &self.pages[&gref];
                    let readonly = g.flags(gref) & 4 != 0;
                    if at + len > self.disk.len() {
                        status = -1;
                        break;
                    }
                    match op {
                        OP_READ => {
                            assert!(!readonly, "a read into a read-only grant");
                            page.write(first * UNIT, &self.disk[at..at + len]);
                        }
                        OP_WRITE => page.read(first * UNIT, &mut self.disk[at..at + len]),
                        _ => panic!("op {op}"),
                    }
                    at += len;
                }
                if op == OP_FLUSH {
                    assert_eq!(nseg, 0);
                }
                let mut rsp = [0u8; 16];
                rsp[0..8].copy_from_slice(&e[8..16]);
                rsp[8] = op;
                rsp[10..12].copy_from_slice(&status.to_le_bytes());
                self.ring.respond(&rsp);
            }
            self.ring.push();
        }
    }

    fn setup() -> (Disk, Backend, Grants) {
        let disk = Disk::new(Page::new(), 0, 51712);
        let back = Backend {
            ring: BackRing::attach(&disk.ring),
            disk: (0..2 << 20).map(|i| (i / 512) as u8 ^ i as u8).collect(),
            pages: BTreeMap::new(),
            queue: Vec::new(),
        };
        (disk, back, grants(4))
    }

    #[test]
    fn thirty_two_requests_in_flight_answered_out_of_order() {
        let (mut disk, mut back, mut g) = setup();
        let before = g.available();
        let mut ids = Vec::new();
        for i in 0..32u64 {
            let (id, _) = disk
                .submit(&mut g, OP_READ, i * 88, &[0u8; 11 * 4096])
                .unwrap()
                .unwrap();
            ids.push(id);
        }
        assert!(
            disk.submit(&mut g, OP_READ, 0, &[0u8; 512])
                .unwrap()
                .is_none(),
            "a 33rd request went in"
        );
        back.take(&disk);
        back.serve(&g);
        assert!(disk.reap(&mut g).unwrap());
        for (i, id) in ids.into_iter().enumerate() {
            let done = disk.take(&mut g, id).unwrap().unwrap();
            assert_eq!(done.status, 0);
            let start = i * 88 * 512;
            let mut got = Vec::new();
            for (p, len) in &done.segments {
                let mut b = alloc::vec![0u8; *len];
                p.read(0, &mut b);
                got.extend(b);
            }
            assert_eq!(got, back.disk[start..start + 11 * 4096]);
            disk.recycle(done);
        }
        assert_eq!(g.available(), before, "grants leaked");
    }

    #[test]
    fn writes_reach_the_disk_through_read_only_grants() {
        let (mut disk, mut back, mut g) = setup();
        let data: Vec<u8> = (0..3 * 512).map(|i| (i * 7) as u8).collect();
        let (id, notify) = disk.submit(&mut g, OP_WRITE, 5, &data).unwrap().unwrap();
        assert!(notify);
        back.take(&disk);
        for e in &back.queue {
            let gref = u32::from_le_bytes(e[24..28].try_into().unwrap());
            assert_eq!(g.flags(gref) & 4, 4, "write data must be granted read-only");
            assert_eq!((e[28], e[29]), (0, 2), "three 512-byte units");
        }
        back.serve(&g);
        disk.reap(&mut g).unwrap();
        assert_eq!(disk.take(&mut g, id).unwrap().unwrap().status, 0);
        assert_eq!(&back.disk[5 * 512..8 * 512], &data[..]);
    }

    #[test]
    fn responses_for_unknown_or_finished_requests_break_the_device() {
        let (mut disk, mut back, mut g) = setup();
        let (id, _) = disk
            .submit(&mut g, OP_READ, 0, &[0u8; 512])
            .unwrap()
            .unwrap();
        back.take(&disk);
        let mut rsp = [0u8; 16];
        rsp[0..8].copy_from_slice(&(id as u64).to_le_bytes());
        back.ring.respond(&rsp);
        back.ring.respond(&rsp);
        back.ring.push();
        // Two responses for one request: more than outstanding, refused.
        assert_eq!(disk.reap(&mut g), Err(BlockError::Io { errno: EPROTO }));
        let (mut disk, mut back, mut g) = setup();
        disk.submit(&mut g, OP_READ, 0, &[0u8; 512])
            .unwrap()
            .unwrap();
        back.take(&disk);
        let mut rsp = [0u8; 16];
        rsp[0..8].copy_from_slice(&77u64.to_le_bytes());
        back.ring.respond(&rsp);
        back.ring.push();
        assert_eq!(disk.reap(&mut g), Err(BlockError::Io { errno: EPROTO }));
        assert!(disk.submit(&mut g, OP_READ, 0, &[0u8; 512]).is_err());
    }

    #[test]
    fn an_abandoned_request_is_released_when_its_response_comes() {
        let (mut disk, mut back, mut g) = setup();
        let before = g.available();
        let (id, _) = disk
            .submit(&mut g, OP_READ, 0, &[0u8; 4096])
            .unwrap()
            .unwrap();
        disk.abandon(&mut g, id);
        assert_eq!(
            g.available(),
            before - 1,
            "released before the backend answered"
        );
        back.take(&disk);
        back.serve(&g);
        disk.reap(&mut g).unwrap();
        assert_eq!(g.available(), before);
        assert!(disk.inflight[id].is_none());
    }

    #[test]
    fn failed_requests_report_their_status() {
        let (mut disk, mut back, mut g) = setup();
        let (id, _) = disk
            .submit(&mut g, OP_READ, (2 << 20) / 512 - 1, &[0u8; 1024])
            .unwrap()
            .unwrap();
        back.take(&disk);
        back.serve(&g);
        disk.reap(&mut g).unwrap();
        assert_eq!(disk.take(&mut g, id).unwrap().unwrap().status, -1);
    }

    /// A platform whose clock jumps to each deadline the executor waits for.
    struct Jumping(Cell<u64>);

    impl mirage_runtime::Platform for Jumping {
        fn now_ns(&self) -> u64 {
            self.0.get()
        }
        fn wait(&self, deadline: Option<u64>) {
            let deadline = deadline.expect("every wait on the backend has a deadline");
            self.0.set(deadline.max(self.0.get()));
        }
    }

    #[test]
    fn a_silent_backend_fails_a_transfer_after_the_timeout_and_keeps_its_pages() {
        // The defect: a read waited for its response forever.
        let block = Block {
            shared: Rc::new(RefCell::new(Shared {
                disk: Disk::new(Page::new(), 0, 0),
                channel: Channel::bound(7),
                flush: false,
            })),
            info: BlockInfo {
                sector_size: 512,
                sectors: 8,
                read_write: true,
            },
        };
        let clock = Jumping(Cell::new(0));
        let mut buf = [0u8; 512];
        let read =
            mirage_runtime::block_on(&clock, mirage_devices::Block::read(&block, 0, &mut buf));
        assert_eq!(read, Err(BlockError::Disconnected));
        assert_eq!(clock.0.get(), REQUEST_TIMEOUT_NS);
        // The backend may still write the page: the request stays, abandoned, its page
        // granted until a late response releases it.
        let shared = block.shared.borrow();
        let req = shared.disk.inflight.iter().flatten().next().unwrap();
        assert!(req.abandoned && req.status.is_none());
    }
}
