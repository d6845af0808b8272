//! Paginated scrolls: one range of the id space page by page (the next page requested while this one is parsed), a whole collection as parallel slices of the id space, and many documents as concurrent `match.any` chunks.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use super::*;

/// Point ids RECON writes are the first 15 hex digits of an md5: uniform
/// below 2^60. Slices split that range evenly; ids above it (and UUIDs,
/// which Qdrant orders after every integer) belong to the last slice, so
/// other ids cost speed, never a point.
const ID_SPACE: u64 = 1 << 60;

/// A part of the id space one scroll reads: from `start` (null: the
/// beginning) up to, not including, `stop` (`None`: the end).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Slice {
    pub(super) start: Value,
    pub(super) stop: Option<u64>,
}

impl Slice {
    pub(super) const ALL: Slice = Slice { start: Value::Null, stop: None };

    /// `n` slices covering every id exactly once.
    pub(super) fn split(n: u32) -> Vec<Slice> {
        let n = u64::from(n.max(1));
        let bound = |k: u64| ID_SPACE / n * k;
        (0..n).map(|k| Slice { start: if k == 0 { Value::Null } else { json!(bound(k)) }, stop: (k + 1 < n).then(|| bound(k + 1)) }).collect()
    }

    /// Whether a point (numeric id, or `None` for a UUID) is this slice's.
    /// Slices start exactly at `start`, so only the upper end needs a check.
    fn holds(&self, id: Option<u64>) -> bool {
        match (self.stop, id) {
            (None, _) => true,
            (Some(stop), Some(id)) => id < stop,
            (Some(_), None) => false,
        }
    }

    /// Whether a page starting at `offset` would still hold points of this slice.
    fn reaches(&self, offset: &Value) -> bool {
        match (self.stop, offset) {
            (_, Value::Null) => false,
            (None, _) => true,
            (Some(stop), o) => o.as_u64().is_some_and(|o| o < stop),
        }
    }
}

/// What the concurrent chunks of a filtered read share.
struct Chunks<'a> {
    queue: VecDeque<Vec<&'a str>>,
    counts: HashMap<String, DocCounts>,
    failed: Vec<(String, String)>,
    failed_in_a_row: u32,
    /// Why the whole read stops (a fatal failure, or too many in a row).
    abort: Option<Error>,
    /// The collection refuses filters on unindexed fields (strict mode).
    index_required: bool,
}

impl QdrantClient {
    /// Counts for `hashes` (already unique), `match.any` chunks of at most
    /// `hashes_per_request` (or a strict-mode cap) read `parallel_requests`
    /// at a time. `Ok(None)`: the collection refuses such filters (strict
    /// mode without a doc_hash index), read them with one scroll instead.
    pub(super) async fn filtered_counts(&self, tally: &Tally, hashes: &[&str]) -> Result<Option<(HashMap<String, DocCounts>, Vec<(String, String)>)>> {
        let per = self.hashes_cap();
        let state = Mutex::new(Chunks {
            queue: hashes.chunks(per).map(<[&str]>::to_vec).collect(),
            counts: HashMap::new(),
            failed: Vec::new(),
            failed_in_a_row: 0,
            abort: None,
            index_required: false,
        });
        let workers = (0..self.settings.parallel_requests.max(1)).map(|_| self.chunk_worker(tally, &state)).collect();
        JoinAll::new(workers).await;
        let st = state.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = st.abort {
            return Err(e);
        }
        Ok((!st.index_required).then_some((st.counts, st.failed)))
    }

    async fn chunk_worker<'a>(&self, tally: &Tally, state: &Mutex<Chunks<'a>>) {
        const OP: &str = "scrolling points by doc_hash";
        let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let Some(chunk) = ({
                let mut st = lock();
                if st.abort.is_some() || st.index_required {
                    return;
                }
                st.queue.pop_front()
            }) else {
                return;
            };
            let wanted: FastSet<&str> = chunk.iter().copied().collect();
            let filter = json!({"must": [{"key": "doc_hash", "match": {"any": chunk}}]});
            // Merged only when the whole chunk succeeded: a half-read chunk
            // would under-count its documents without saying so.
            let mut local = FastMap::default();
            let res = self.scroll_range(tally, Some(&filter), &Slice::ALL, &mut |p| add_point(&mut local, p, Some(&wanted))).await;
            let mut st = lock();
            let Err(f) = res else {
                st.failed_in_a_row = 0;
                st.counts.extend(local);
                continue;
            };
            match refusal(&f) {
                Some(Refusal::ConditionSize(cap)) if cap < chunk.len() => {
                    self.any_cap.store(cap, Ordering::Relaxed);
                    tracing::warn!(hashes_per_request = chunk.len(), cap, "Qdrant caps the size of a match.any (strict mode): using its cap");
                    for part in chunk.chunks(cap).rev() {
                        st.queue.push_front(part.to_vec());
                    }
                    continue;
                }
                Some(Refusal::IndexRequired) => {
                    st.index_required = true;
                    return;
                }
                _ => {}
            }
            if self.is_fatal(&f) {
                st.abort = Some(self.error(OP, f));
                return;
            }
            let msg = self.error(OP, f).to_string();
            st.failed_in_a_row += 1;
            let max = self.settings.max_failed_requests_in_a_row;
            if max > 0 && st.failed_in_a_row >= max {
                let n = st.failed_in_a_row;
                st.abort = Some(Error::Qdrant {
                    op: OP.into(),
                    url: self.base.clone(),
                    msg: format!("{n} requests in a row failed after retries, giving up (last: {msg})"),
                });
                return;
            }
            st.failed.extend(chunk.iter().map(|h| ((*h).to_string(), msg.clone())));
        }
    }

    /// Every point of the collection, read as `parallel_requests` slices of
    /// the id space at once; counts for `wanted` (all documents when `None`).
    /// Any failure fails the whole read: a half-read scroll under-counts.
    pub(super) async fn scroll_whole<W: std::hash::BuildHasher + Sync>(
        &self,
        tally: &Tally,
        wanted: Option<&HashSet<&str, W>>,
    ) -> Result<HashMap<String, DocCounts>, Failure> {
        let slices = Slice::split(self.settings.parallel_requests);
        let reads = slices
            .iter()
            .map(|s| async move {
                let mut m = FastMap::default();
                self.scroll_range(tally, None, s, &mut |p| add_point(&mut m, p, wanted)).await.map(|()| m)
            })
            .collect();
        let mut parts = TryJoinAll::new(reads).await?.into_iter();
        let mut all = parts.next().unwrap_or_default();
        for part in parts {
            for (h, c) in part {
                let e = all.entry(h).or_default();
                e.points = e.points.saturating_add(c.points);
                for (a, b) in e.counts.iter_mut().zip(c.counts) {
                    *a = a.saturating_add(b);
                }
            }
        }
        Ok(all.into_iter().collect())
    }

    /// Follows `next_page_offset` through `slice`, handing each of its points
    /// to `each`. Pages are parsed straight into [`ScrollPage`] (borrowed
    /// strings, domains counted while parsing). The next page is requested
    /// before the current one is parsed (its offset read from the answer's
    /// tail, then checked against the parsed one), so Qdrant reads page N+1
    /// while this side counts page N.
    pub(super) async fn scroll_range(&self, tally: &Tally, filter: Option<&Value>, slice: &Slice, each: &mut impl FnMut(&Point<'_>)) -> Result<(), Failure> {
        let path = format!("/collections/{}/points/scroll", self.settings.collection);
        let mut offset = slice.start.clone();
        let mut bytes = self.page(tally, &path, filter, &offset).await?;
        let mut mine = |p: &Point<'_>| {
            if slice.holds(p.id.0) {
                each(p);
            }
        };
        loop {
            let guess = tail_value(&bytes, b"\"next_page_offset\":").filter(|g| *g != offset && slice.reaches(g));
            let (parsed, prefetched) = match &guess {
                Some(g) => {
                    // `biased`: the request is sent first, then the page is parsed while it is in flight.
                    let (fetched, parsed) = tokio::join!(biased; self.page(tally, &path, filter, g), async { visit_page(&bytes, &mut mine) });
                    (parsed?, Some(fetched))
                }
                None => (visit_page(&bytes, &mut mine)?, None),
            };
            match parsed {
                None | Some(Value::Null) => return Ok(()),
                // A server repeating an offset would otherwise loop forever.
                Some(next) if next == offset => return Err(Failure::Body(format!("next_page_offset {next} did not advance"))),
                Some(next) if !slice.reaches(&next) => return Ok(()),
                Some(next) => {
                    bytes = match prefetched {
                        Some(fetched) if guess.as_ref() == Some(&next) => fetched?,
                        _ => self.page(tally, &path, filter, &next).await?,
                    };
                    offset = next;
                }
            }
        }
    }

    /// One scroll page from `offset`. A collection in strict mode caps
    /// `limit` (`max_query_limit`): the page is asked again at the cap it
    /// names, and later pages use it.
    async fn page(&self, tally: &Tally, path: &str, filter: Option<&Value>, offset: &Value) -> Result<Vec<u8>, Failure> {
        loop {
            let limit = self.page_limit();
            let mut body = json!({
                "limit": limit,
                "offset": offset,
                "with_payload": WITH_PAYLOAD,
                "with_vector": false,
            });
            if let Some(f) = filter {
                body["filter"] = f.clone();
            }
            let answer = self.call_bytes(tally, Method::POST, path, Some(&body)).await;
            let cap = match &answer {
                Err(f) => match refusal(f) {
                    Some(Refusal::Limit(c)) if c < limit => Some(c),
                    _ => None,
                },
                Ok(_) => None,
            };
            let Some(cap) = cap else { return answer };
            self.page_cap.store(cap, Ordering::Relaxed);
            tracing::warn!(page_size = self.settings.page_size, cap, "Qdrant caps the scroll limit (strict mode): using its cap");
        }
    }
}

/// Parses one scroll answer, hands its points to `each`, and returns its `next_page_offset`.
pub(super) fn visit_page(bytes: &[u8], each: &mut impl FnMut(&Point<'_>)) -> Result<Option<Value>, Failure> {
    let page: ScrollEnvelope<'_> = serde_json::from_slice(bytes).map_err(|e| Failure::Body(format!("scroll answer is not Qdrant's ({e})")))?;
    let page = page.result.ok_or_else(|| Failure::Body("answer has no `result`".into()))?;
    let points = page.points.ok_or_else(|| Failure::Body("scroll answer has no `points` list".into()))?;
    points.iter().for_each(each);
    Ok(page.next_page_offset)
}

/// Runs futures concurrently on the current task and returns their outputs in order.
pub(super) struct JoinAll<F: Future> {
    pending: Vec<Option<Pin<Box<F>>>>,
    done: Vec<Option<F::Output>>,
}

impl<F: Future> JoinAll<F> {
    pub(super) fn new(futs: Vec<F>) -> Self {
        let done = futs.iter().map(|_| None).collect();
        JoinAll { pending: futs.into_iter().map(|f| Some(Box::pin(f))).collect(), done }
    }
}

// The outputs are never pinned (only the boxed futures are polled), so
// moving a `JoinAll` is sound whatever they are.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Boxed futures: `JoinAll` is `Unpin`.
        let this = self.get_mut();
        for (slot, out) in this.pending.iter_mut().zip(this.done.iter_mut()) {
            if let Some(f) = slot {
                if let Poll::Ready(v) = f.as_mut().poll(cx) {
                    *out = Some(v);
                    *slot = None;
                }
            }
        }
        if this.pending.iter().all(Option::is_none) {
            Poll::Ready(this.done.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    }
}

/// [`JoinAll`] over results that stops at the first error (the others are dropped, their requests cancelled).
pub(super) struct TryJoinAll<F: Future> {
    inner: JoinAll<F>,
}

impl<T, E, F: Future<Output = Result<T, E>>> TryJoinAll<F> {
    pub(super) fn new(futs: Vec<F>) -> Self {
        TryJoinAll { inner: JoinAll::new(futs) }
    }
}

impl<T, E, F: Future<Output = Result<T, E>>> Future for TryJoinAll<F> {
    type Output = Result<Vec<T>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut self.get_mut().inner;
        for (slot, out) in this.pending.iter_mut().zip(this.done.iter_mut()) {
            if let Some(f) = slot {
                if let Poll::Ready(v) = f.as_mut().poll(cx) {
                    *slot = None;
                    match v {
                        Err(e) => return Poll::Ready(Err(e)),
                        ok => *out = Some(ok),
                    }
                }
            }
        }
        if this.pending.iter().all(Option::is_none) {
            Poll::Ready(this.done.iter_mut().filter_map(Option::take).collect())
        } else {
            Poll::Pending
        }
    }
}
