// A loopback front for `wrangler dev` that makes the plain-HTTP fallback of docker, podman
// and skopeo instant. Run by scripts/dev:
//   node scripts/plain-front.mjs LISTEN_HOST:PORT UPSTREAM_HOST:PORT
//
// Those clients try HTTPS first on a registry without TLS and fall back to HTTP only when
// the attempt fails. workerd does not answer a TLS ClientHello on its HTTP port (no CRLF
// ever comes, so it waits for more), and every command waits about ten seconds for the
// timeout. This front answers a connection whose first byte is a TLS handshake record (0x16)
// with a plain-HTTP 400 and closes it at once, so the client falls back in milliseconds, and splices every other connection to
// wrangler byte for byte, in both directions, rewriting nothing.
import net from "node:net";

const TLS_HANDSHAKE = 0x16;
// The answer to a TLS hello. Go's TLS client reports a reply that starts with "HTTP/" as
// "server gave HTTP response to HTTPS client", the error on which docker falls back to plain
// HTTP (`docker manifest` does not fall back on a bare close); containers/image (podman,
// skopeo) falls back on either.
const BODY = "this port speaks plain HTTP\n";
const NOT_TLS =
  "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n" +
  `Content-Length: ${BODY.length}\r\nConnection: close\r\n\r\n${BODY}`;

function address(text) {
  const at = text.lastIndexOf(":");
  const port = Number(text.slice(at + 1));
  if (at < 1 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`plain-front: ${JSON.stringify(text)} is not HOST:PORT`);
    process.exit(2);
  }
  return { host: text.slice(0, at), port };
}

const [listenAt, upstreamAt] = process.argv.slice(2).map(address);
if (!upstreamAt) {
  console.error("usage: node scripts/plain-front.mjs LISTEN_HOST:PORT UPSTREAM_HOST:PORT");
  process.exit(2);
}

function splice(client, first) {
  // Half-open on both sides: a client that ends its request (FIN) still gets the answer.
  const upstream = net.connect({ port: upstreamAt.port, host: upstreamAt.host, allowHalfOpen: true });
  upstream.setNoDelay(true);
  upstream.on("connect", () => {
    upstream.write(first);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  upstream.on("error", () => linger(client));
  client.on("error", () => upstream.destroy());
  client.on("close", () => upstream.destroy());
  upstream.on("close", () => linger(client));
}

// Once the upstream is gone, the client gets the end of the answer (FIN) and what it still
// sends is read and dropped for a while, rather than the connection reset: a reset can make
// the client lose an answer it has not read yet (a 413 for a body still being sent, which
// docker then reports as an empty body).
const LINGER_MS = 5000;
function linger(client) {
  if (client.destroyed) return;
  client.unpipe();
  client.end();
  client.on("data", () => {});
  client.resume();
  setTimeout(() => client.destroy(), LINGER_MS).unref();
}

const server = net.createServer({ allowHalfOpen: true }, (client) => {
  client.setNoDelay(true);
  client.once("data", (first) => {
    // Hold what follows until the upstream connection is there; pipe() resumes.
    client.pause();
    if (first[0] === TLS_HANDSHAKE) {
      client.end(NOT_TLS);
      return;
    }
    splice(client, first);
  });
  client.on("error", () => client.destroy());
});

server.on("error", (e) => {
  console.error(`plain-front: cannot listen on ${listenAt.host}:${listenAt.port}: ${e.message}`);
  process.exit(1);
});
server.listen(listenAt.port, listenAt.host);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => process.exit(0));
}
