// Raw R2 baseline for scripts/bench: the physical limit of this machine for R2 through
// workerd. No routing, no hashing, no checks beyond what R2 needs.
//   PUT /<key>  (Content-Length required) -> R2 put of request.body, 201
//   GET /<key>  -> the R2 object body straight out, with Content-Length, or 404
//   GET /       -> 200 "ok" (readiness probe)
export default {
  async fetch(request, env) {
    const key = decodeURIComponent(new URL(request.url).pathname.slice(1));
    if (request.method === "GET" && key === "") {
      return new Response("ok");
    }
    if (request.method === "PUT") {
      if (!request.headers.has("content-length")) {
        return new Response("Content-Length required\n", { status: 411 });
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
