// Raw R2 baseline for scripts/bench: the physical limit of this machine for R2 through
// workerd. No routing, no hashing, no checks beyond what R2 needs.
//   PUT /<key>  (Content-Length required) -> R2 put of request.body, 201
//   PUT /<key>?part-mib=N -> the body as an R2 multipart upload of N MiB parts (the way the
//                registry stores a blob pushed in chunks or with no length), 201; the body
//                may come with a Content-Length or chunked (as docker sends a layer)
//   PUT /<key>?part-mib=N&hash=sha256 -> the same, with every byte also hashed by
//                crypto.DigestStream on the way (as the registry must), 201 with the digest
//                in `Docker-Content-Digest`: the limit for a road that stores and hashes
//   GET /<key>  -> the R2 object body straight out, with Content-Length, or 404
//   GET /       -> 200 "ok" (readiness probe)
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const key = decodeURIComponent(url.pathname.slice(1));
    if (request.method === "GET" && key === "") {
      return new Response("ok");
    }
    if (request.method === "PUT") {
      const partMib = Number(url.searchParams.get("part-mib") || 0);
      if (partMib <= 0 && !request.headers.has("content-length")) {
        return new Response("Content-Length required\n", { status: 411 });
      }
      if (partMib > 0) {
        const hash = url.searchParams.get("hash");
        const digest = await putMultipart(env.BUCKET, key, request.body, partMib * 1024 * 1024, hash);
        return new Response(null, { status: 201, headers: digest ? { "docker-content-digest": digest } : {} });
      }
      const obj = await env.BUCKET.put(key, request.body);
      return new Response(null, { status: 201, headers: { etag: obj.httpEtag } });
    }
    if (request.method === "GET") {
      const obj = await env.BUCKET.get(key);
      if (obj === null) {
        return new Response("not found\n", { status: 404 });
      }
      return new Response(obj.body, {
        headers: { "content-length": String(obj.size), "content-type": "application/octet-stream" },
      });
    }
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, PUT" } });
  },
};

// Cuts a body into parts of `partSize` bytes (the last one smaller) and uploads them as one
// multipart object; with `hash` ("sha256"), also hashes every byte and returns the digest.
async function putMultipart(bucket, key, body, partSize, hash) {
  const hashing = hash ? new crypto.DigestStream(hash.toUpperCase().replace("SHA", "SHA-")) : null;
  const hasher = hashing ? hashing.getWriter() : null;
  const upload = await bucket.createMultipartUpload(key);
  const parts = [];
  let buffer = new Uint8Array(partSize);
  let filled = 0;
  const flush = async () => {
    parts.push(await upload.uploadPart(parts.length + 1, buffer.subarray(0, filled)));
    buffer = new Uint8Array(partSize);
    filled = 0;
  };
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (hasher) {
      hasher.write(value).catch(() => {});
      if (hasher.desiredSize !== null && hasher.desiredSize <= 0) await hasher.ready;
    }
    let offset = 0;
    while (offset < value.length) {
      const n = Math.min(partSize - filled, value.length - offset);
      buffer.set(value.subarray(offset, offset + n), filled);
      filled += n;
      offset += n;
      if (filled === partSize) await flush();
    }
  }
  if (filled > 0 || parts.length === 0) await flush();
  await upload.complete(parts);
  if (!hasher) return null;
  await hasher.close();
  const bytes = new Uint8Array(await hashing.digest);
  return `${hash}:${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}
