//! Work handed to the runtime so that bytes never enter wasm, or cost less CPU there:
//! hashing an R2 object (`crypto.DigestStream` reads the R2 stream directly), counting and
//! hashing a request body on its way into R2 (so that a failed put can be told apart as the
//! client's, its body ended early, or R2's), and cutting a body of unknown length into
//! multipart parts ([`RuntimeCutter`], the JavaScript half of `storage::cutter`). The glue
//! only moves bytes; what to do with each step is decided in Rust. (PBKDF2 in WebCrypto,
//! for password checks, lives with the rest of the password check in `auth::kdf`.)

use crate::oci::digest::to_hex;
use crate::oci::{Algorithm, Digest};
use crate::storage::put_failure::BodyReport;
use crate::storage::{CutPart, PartReceipt};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::ReadableStream;

#[wasm_bindgen(inline_js = r#"
export async function digest_stream(stream, algorithm) {
  const digest = new crypto.DigestStream(algorithm);
  await stream.pipeTo(digest);
  return new Uint8Array(await digest.digest);
}
"#)]
extern "C" {
    /// A promise of the digest (bytes) of everything `stream` yields.
    fn digest_stream(stream: ReadableStream, algorithm: &str) -> js_sys::Promise;
}

#[wasm_bindgen(inline_js = r#"
export function tracked_body(source, length, algorithm) {
  const report = { delivered: 0, ended: false, broke: null };
  const hashing = algorithm ? new crypto.DigestStream(algorithm) : null;
  const hash = hashing ? hashing.getWriter() : null;
  const reader = source.getReader();
  const counted = new ReadableStream({
    async pull(controller) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        report.broke = String((e && e.message) || e);
        controller.error(e);
        return;
      }
      if (chunk.done) {
        report.ended = true;
        if (hash) await hash.close();
        controller.close();
        return;
      }
      report.delivered += chunk.value.byteLength;
      if (hash) await hash.write(chunk.value);
      controller.enqueue(chunk.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  const fixed = new FixedLengthStream(length);
  counted.pipeTo(fixed.writable).catch(() => {});
  const digest = hashing ? hashing.digest.then((d) => new Uint8Array(d), () => null) : Promise.resolve(null);
  return [fixed.readable, report, digest];
}
"#)]
extern "C" {
    /// `[stream, report, digest]`: `source` passed through a counter (and, given an
    /// algorithm, a `crypto.DigestStream`, awaited chunk by chunk so nothing queues) into a
    /// `FixedLengthStream` of `length` bytes (R2 needs a known length, and refuses a body
    /// that ends short); `digest` is a promise of the raw digest once the body has ended.
    fn tracked_body(source: ReadableStream, length: f64, algorithm: Option<String>) -> js_sys::Array;
}

/// A request body on its way into R2, counted (and hashed, if asked) by the runtime.
pub struct TrackedBody {
    pub stream: ReadableStream,
    report: JsValue,
    digest: js_sys::Promise,
    algorithm: Option<Algorithm>,
}

impl TrackedBody {
    pub fn new(source: ReadableStream, length: u64, algorithm: Option<Algorithm>) -> Self {
        let parts = tracked_body(source, length as f64, algorithm.map(|a| runtime_name(a).to_owned()));
        TrackedBody {
            stream: parts.get(0).unchecked_into(),
            report: parts.get(1),
            digest: parts.get(2).unchecked_into(),
            algorithm,
        }
    }

    /// The digest of every byte the body brought, once it has ended (`None` if it was not
    /// hashed or did not end).
    pub async fn digest(&self) -> Option<Digest> {
        let raw = JsFuture::from(self.digest.clone()).await.ok().filter(|d| !d.is_null())?;
        digest_from_raw(self.algorithm?, &js_sys::Uint8Array::new(&raw).to_vec())
    }

    /// What the client's stream did so far.
    pub fn report(&self) -> BodyReport {
        let field = |name: &str| js_sys::Reflect::get(&self.report, &JsValue::from_str(name)).unwrap_or(JsValue::NULL);
        BodyReport {
            delivered: field("delivered").as_f64().unwrap_or(0.0) as u64,
            ended: field("ended").as_bool().unwrap_or(false),
            broke: field("broke").as_string(),
        }
    }
}

/// The raw digest of a stream, computed by the runtime.
pub async fn digest_of_stream(stream: ReadableStream, algorithm: Algorithm) -> Result<Vec<u8>, JsValue> {
    let bytes = JsFuture::from(digest_stream(stream, runtime_name(algorithm))).await?;
    Ok(js_sys::Uint8Array::new(&bytes).to_vec())
}

/// WebCrypto's name for an algorithm.
fn runtime_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Sha256 => "SHA-256",
        Algorithm::Sha512 => "SHA-512",
    }
}

pub(crate) fn digest_from_raw(algorithm: Algorithm, raw: &[u8]) -> Option<Digest> {
    format!("{}:{}", algorithm.as_str(), to_hex(raw)).parse().ok()
}

#[wasm_bindgen(inline_js = r#"
export class PartCutter {
  constructor(source, algorithm, limit, drainBeforeAnswer) {
    this.reader = source.getReader();
    this.hashing = new crypto.DigestStream(algorithm);
    this.hash = this.hashing.getWriter();
    this.pending = null;
    this.read = 0;
    this.limit = limit;
    this.drainBeforeAnswer = drainBeforeAnswer;
    this.draining = null;
    this.rest = null;
    this.end = null;
    this.inflight = null;
  }

  async fill(partSize) {
    const part = new Uint8Array(partSize);
    let filled = 0;
    while (filled < partSize) {
      if (this.pending === null) {
        if (this.end !== null) break;
        let next;
        try {
          next = await this.reader.read();
        } catch (e) {
          this.end = { end: "broke", reason: String((e && e.message) || e) };
          continue;
        }
        if (next.done) {
          this.end = { end: "ended" };
          continue;
        }
        let chunk = next.value;
        if (this.limit >= 0 && this.read + chunk.byteLength > this.limit) {
          chunk = chunk.subarray(0, this.limit - this.read);
          this.end = { end: "over-limit" };
          this.draining = this.discard(this.drainBeforeAnswer);
        }
        // Not awaited chunk by chunk (a microtask and a stream step each): the hash's
        // queue is waited for only when it is full, which keeps the backpressure.
        this.hash.write(chunk).catch(() => {});
        if (this.hash.desiredSize !== null && this.hash.desiredSize <= 0) await this.hash.ready;
        this.read += chunk.byteLength;
        this.pending = chunk.byteLength > 0 ? chunk : null;
        continue;
      }
      const n = Math.min(partSize - filled, this.pending.byteLength);
      part.set(this.pending.subarray(0, n), filled);
      filled += n;
      this.pending = n < this.pending.byteLength ? this.pending.subarray(n) : null;
    }
    return part.subarray(0, filled);
  }

  // Reads and drops up to `room` bytes of the rest of a refused body; true once it ended.
  // An answer that goes out while the client still sends can be lost to a reset on the
  // way (docker then reports an empty 413 body), so the rest is read before answering, up
  // to a bound; past it, the answer goes out and the reading goes on in the background.
  async discard(room) {
    try {
      while (room > 0) {
        const next = await this.reader.read();
        if (next.done) return true;
        room -= next.value.byteLength;
      }
    } catch (e) {
      return true;
    }
    return false;
  }

  // Returns part `number`'s receipt. The next part is read while that one uploads, so
  // at most two parts are held: the one in flight and the one filling.
  async uploadNext(bucket, key, uploadId, number, partSize) {
    const upload = bucket.resumeMultipartUpload(key, uploadId);
    if (this.inflight === null) {
      const first = await this.fill(partSize);
      if (first.byteLength === 0) return this.outcome();
      this.inflight = this.start(upload, number, first);
    }
    if (this.inflight.number !== number) {
      throw new Error(`part ${this.inflight.number} is in flight, not ${number}`);
    }
    const next = await this.fill(partSize);
    const uploaded = await this.inflight.receipt;
    this.inflight = next.byteLength > 0 ? this.start(upload, number + 1, next) : null;
    return uploaded;
  }

  start(upload, number, part) {
    const receipt = upload.uploadPart(number, part).then((u) => ({ etag: u.etag, size: part.byteLength }));
    receipt.catch(() => {}); // awaited later; a failure is reported then
    return { number, receipt };
  }

  async outcome() {
    const end = this.end || { end: "ended" };
    if (this.draining !== null && !(await this.draining)) {
      this.rest = this.discard(Infinity);
    }
    if (end.end === "ended") {
      await this.hash.close();
      end.digest = new Uint8Array(await this.hashing.digest);
    }
    return end;
  }
}
"#)]
extern "C" {
    /// The runtime half of a cutter: reads a body, hashes every byte with
    /// `crypto.DigestStream` as it is read, fills one part at a time and uploads it with
    /// R2's `uploadPart`, reading the next part while one uploads; reading waits for
    /// that upload before it goes further, so at most two parts are held.
    type PartCutter;
    #[wasm_bindgen(constructor)]
    fn new(source: ReadableStream, algorithm: &str, limit: f64, drain_before_answer: f64) -> PartCutter;
    /// The reading of the rest of a body refused over the limit (a promise), or `null`.
    #[wasm_bindgen(method, getter)]
    fn rest(this: &PartCutter) -> JsValue;
    /// A promise of `{etag, size}` for an uploaded part, or, once the body is read,
    /// `{end: "ended", digest}`, `{end: "broke", reason}` or `{end: "over-limit"}`.
    #[wasm_bindgen(method, js_name = uploadNext)]
    fn upload_next(
        this: &PartCutter,
        bucket: &JsValue,
        key: &str,
        upload_id: &str,
        number: u16,
        part_size: f64,
    ) -> js_sys::Promise;
}

/// How much of a body refused over the limit is read (and dropped) before the `413` goes
/// out: up to this, the client has finished sending when it gets the answer.
const DRAIN_BEFORE_ANSWER: u64 = 1 << 30;

/// A body of unknown length cut into multipart parts and hashed by the runtime.
pub struct RuntimeCutter {
    cutter: PartCutter,
    algorithm: Algorithm,
    limit: Option<u64>,
}

impl RuntimeCutter {
    pub fn new(source: ReadableStream, algorithm: Algorithm, limit: Option<u64>) -> Self {
        let js_limit = limit.map_or(-1.0, |l| l as f64);
        let drain = DRAIN_BEFORE_ANSWER as f64;
        RuntimeCutter { cutter: PartCutter::new(source, runtime_name(algorithm), js_limit, drain), algorithm, limit }
    }

    /// Once the body was refused over the limit: the reading of its rest, still running,
    /// for the request to keep alive past its answer.
    pub fn rest(&self) -> Option<js_sys::Promise> {
        self.cutter.rest().dyn_into().ok()
    }

    /// One step: uploads the next part into `bucket`, or says how the body ended. An
    /// `Err` is R2's (the client's stream breaking is [`CutPart::Broke`]).
    pub async fn upload_next(
        &mut self,
        bucket: &JsValue,
        key: &str,
        upload_id: &str,
        number: u16,
        part_size: u64,
    ) -> Result<CutPart, String> {
        let promise = self.cutter.upload_next(bucket, key, upload_id, number, part_size as f64);
        let step = JsFuture::from(promise).await.map_err(|e| format!("{e:?}"))?;
        let field = |name: &str| js_sys::Reflect::get(&step, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
        if let Some(etag) = field("etag").as_string() {
            let size = field("size").as_f64().unwrap_or(0.0) as u64;
            return Ok(CutPart::Uploaded(PartReceipt { part_number: number, etag, size }));
        }
        match field("end").as_string().as_deref() {
            Some("ended") => {
                let raw = js_sys::Uint8Array::new(&field("digest")).to_vec();
                digest_from_raw(self.algorithm, &raw).map(CutPart::Ended).ok_or_else(|| "no digest".to_owned())
            }
            Some("broke") => Ok(CutPart::Broke(field("reason").as_string().unwrap_or_default())),
            Some("over-limit") => Ok(CutPart::OverLimit(self.limit.unwrap_or(u64::MAX))),
            other => Err(format!("the cutter answered {other:?}")),
        }
    }
}
