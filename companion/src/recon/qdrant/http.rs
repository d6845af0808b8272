//! One Qdrant REST request with retries: the api-key header, the failure kinds, the retry verdicts, strict-mode refusals, and the errors a run reports.

use super::*;

/// One failed attempt, before it becomes an [`Error`].
#[derive(Debug)]
pub(super) enum Failure {
    Transport {
        connect: bool,
        msg: String,
    },
    Status {
        code: u16,
        retry_after: Option<Duration>,
        msg: String,
    },
    /// A 2xx answer that is not Qdrant's envelope.
    Body(String),
}

/// HTTP attempts of one public call and Qdrant's own time for them;
/// atomics so the call's future stays `Send`.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) requests: AtomicU64,
    pub(super) retries: AtomicU64,
    /// Sum of the answers' `time` fields, in microseconds.
    pub(super) server_micros: AtomicU64,
}

impl Tally {
    pub(super) fn batch(&self, counts: HashMap<String, DocCounts>, failed: Vec<(String, String)>) -> CountsBatch {
        CountsBatch {
            counts,
            failed,
            requests: self.requests.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            server_seconds: self.server_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    fn add_server_time(&self, body: &[u8]) {
        if let Some(t) = tail_number(body, b"\"time\":") {
            self.server_micros.fetch_add((t * 1e6) as u64, Ordering::Relaxed);
        }
    }
}

/// A strict-mode refusal the client can adapt to (Qdrant 1.19's wording).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// `Limit exceeded 5000 > 1000 for "limit"`: pages of at most this many points.
    Limit(u32),
    /// `Condition size limit reached (256 > 100)`: at most this many hashes per `match.any`.
    ConditionSize(usize),
    /// `Index required but not found for "doc_hash"`: filters on an unindexed field are refused.
    IndexRequired,
}

/// What a 400's message says about strict mode, if anything.
pub(super) fn refusal(f: &Failure) -> Option<Refusal> {
    let Failure::Status { code: 400, msg, .. } = f else { return None };
    if msg.contains("Index required but not found for \"doc_hash\"") {
        return Some(Refusal::IndexRequired);
    }
    if let Some(rest) = msg.split_once("Condition size limit reached (").map(|(_, r)| r) {
        let (_, after) = rest.split_once(" > ")?;
        let cap = after.split(')').next()?.trim().parse::<usize>().ok()?;
        return (cap > 0).then_some(Refusal::ConditionSize(cap));
    }
    strict_mode_limit(msg).map(Refusal::Limit)
}

/// The cap in Qdrant's strict-mode refusal `Limit exceeded 5000 > 1000 for "limit"`.
pub(super) fn strict_mode_limit(msg: &str) -> Option<u32> {
    let rest = &msg[msg.find("Limit exceeded ")? + "Limit exceeded ".len()..];
    let (_, after) = rest.split_once(" > ")?;
    let (cap, field) = after.split_once(' ')?;
    if !field.starts_with("for \"limit\"") {
        return None;
    }
    cap.parse::<u32>().ok().filter(|&c| c > 0)
}

impl QdrantClient {
    /// One request with retries; returns the envelope's `result`.
    pub(super) async fn call(&self, tally: &Tally, method: Method, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let bytes = self.call_bytes(tally, method, path, body).await?;
        let mut v: Value = serde_json::from_slice(&bytes).map_err(|e| Failure::Body(format!("answer is not JSON ({e})")))?;
        match v.get_mut("result") {
            Some(r) => Ok(r.take()),
            None => Err(Failure::Body("answer has no `result`".into())),
        }
    }

    /// One request with retries; returns a successful answer's raw body.
    pub(super) async fn call_bytes(&self, tally: &Tally, method: Method, path: &str, body: Option<&Value>) -> Result<Vec<u8>, Failure> {
        let r = retry(
            &self.policy,
            |f: &Failure| self.verdict(f),
            || {
                tally.requests.fetch_add(1, Ordering::Relaxed);
                self.attempt(tally, method.clone(), path, body)
            },
        )
        .await;
        tally.retries.fetch_add(u64::from(r.retries), Ordering::Relaxed);
        r.result
    }

    async fn attempt(&self, tally: &Tally, method: Method, path: &str, body: Option<&Value>) -> Result<Vec<u8>, Failure> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.settings.api_key {
            req = req.header("api-key", key);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(transport)?;
        self.reached.store(true, Ordering::Relaxed);
        let status = resp.status();
        let retry_after =
            resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(transport)?;
        tally.add_server_time(&bytes);
        if !status.is_success() {
            return Err(Failure::Status { code: status.as_u16(), retry_after, msg: error_text(status, &bytes) });
        }
        Ok(Vec::from(bytes))
    }

    fn verdict(&self, f: &Failure) -> Verdict {
        match f {
            Failure::Transport { connect: true, .. } if !self.reached.load(Ordering::Relaxed) => Verdict::Fail,
            Failure::Transport { .. } => Verdict::Retry,
            Failure::Status { code: 429, retry_after: Some(d), .. } => Verdict::RetryAfter(*d),
            Failure::Status { code, .. } if *code == 429 || *code >= 500 => Verdict::Retry,
            Failure::Status { .. } | Failure::Body(_) => Verdict::Fail,
        }
    }

    /// Failures every other request of the call would repeat.
    pub(super) fn is_fatal(&self, f: &Failure) -> bool {
        match f {
            Failure::Status { code, .. } => matches!(code, 401 | 403 | 404),
            Failure::Transport { connect, .. } => *connect && !self.reached.load(Ordering::Relaxed),
            Failure::Body(_) => false,
        }
    }

    pub(super) fn error(&self, op: &str, f: Failure) -> Error {
        let url = self.base.clone();
        let msg = match f {
            Failure::Status { code: 404, .. } => return Error::QdrantCollectionMissing { collection: self.settings.collection.clone(), url },
            Failure::Status { code: code @ (401 | 403), msg, .. } => {
                let key = if self.settings.api_key.is_some() { "the api key was refused" } else { "no api key is set" };
                format!("HTTP {code} ({key}): {msg}")
            }
            Failure::Status { code, msg, .. } => format!("HTTP {code}: {msg}"),
            Failure::Transport { connect: true, msg } => format!("cannot connect: {msg}"),
            Failure::Transport { connect: false, msg } => msg,
            Failure::Body(msg) => msg,
        };
        Error::Qdrant { op: op.to_string(), url, msg }
    }
}

fn transport(e: reqwest::Error) -> Failure {
    let mut msg = if e.is_timeout() { "timed out".to_string() } else { "transport error".to_string() };
    // reqwest's own Display hides the cause (refused, reset, closed early).
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    Failure::Transport { connect: e.is_connect(), msg }
}

/// Qdrant's `status.error`, or the raw body (its auth layer answers plain text).
fn error_text(status: StatusCode, body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<Value>(body).ok().and_then(|v| v.pointer("/status/error").and_then(Value::as_str).map(str::to_string));
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    let text: String = text.chars().take(300).collect();
    if text.is_empty() {
        status.canonical_reason().unwrap_or("no body").to_string()
    } else {
        text
    }
}

/// The number after the last `key` in an answer's tail (Qdrant writes
/// `next_page_offset` and `time` after the points), without parsing the
/// page; only a guess where the caller can check it.
pub(super) fn tail_value(bytes: &[u8], key: &[u8]) -> Option<Value> {
    let tail_start = bytes.len().saturating_sub(1024);
    let tail = &bytes[tail_start..];
    let at = tail.windows(key.len()).rposition(|w| w == key)?;
    serde_json::Deserializer::from_slice(&tail[at + key.len()..]).into_iter::<Value>().next()?.ok()
}

fn tail_number(bytes: &[u8], key: &[u8]) -> Option<f64> {
    tail_value(bytes, key).and_then(|v| v.as_f64())
}
