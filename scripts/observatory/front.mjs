// A TLS front for grading Gatehouse with the HTTP Observatory, as a load balancer would stand in
// front of it in production: one port that answers plain HTTP with a 301 to https:// on the same
// host and port, and TLS by forwarding to Gatehouse over loopback. The Observatory asks
// host:port over both schemes, so both must live on one port: the first byte of a connection
// tells them apart (0x16 opens a TLS handshake).
//
// usage: node front.mjs LISTEN_PORT UPSTREAM_PORT CERT.pem KEY.pem
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import net from "node:net";

const [listenPort, upstreamPort, certFile, keyFile] = process.argv.slice(2);
if (!keyFile) {
  console.error("usage: node front.mjs LISTEN_PORT UPSTREAM_PORT CERT.pem KEY.pem");
  process.exit(2);
}

function forward(req, res) {
  const upstream = http.request(
    {
      host: "127.0.0.1",
      port: Number(upstreamPort),
      method: req.method,
      path: req.url,
      headers: req.headers,
    },
    (answer) => {
      res.writeHead(answer.statusCode, answer.rawHeaders);
      answer.pipe(res);
    },
  );
  upstream.on("error", (e) => {
    res.writeHead(502, { "content-type": "text/plain" });
    res.end(`upstream: ${e.message}\n`);
  });
  req.pipe(upstream);
}

// What a front does for plain HTTP: send everyone to https, keeping host and path.
function redirect(req, res) {
  const host = req.headers.host ?? `localhost:${listenPort}`;
  res.writeHead(301, { location: `https://${host}${req.url}` });
  res.end();
}

const tls = https.createServer(
  { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) },
  forward,
);
const plain = http.createServer(redirect);

// Node's HTTP and TLS servers read a handed-over socket's handle directly, so bytes already read
// to peek at cannot be given back; instead each connection is piped, first chunk included, to
// one of two internal listeners.
const internal = (server) =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
const [tlsPort, plainPort] = await Promise.all([internal(tls), internal(plain)]);

net
  .createServer((socket) => {
    socket.on("error", () => socket.destroy());
    socket.once("data", (first) => {
      const inner = net.connect(first[0] === 0x16 ? tlsPort : plainPort, "127.0.0.1", () => {
        inner.write(first);
        socket.pipe(inner).pipe(socket);
      });
      inner.on("error", () => socket.destroy());
      socket.on("close", () => inner.destroy());
    });
  })
  .listen(Number(listenPort), "127.0.0.1", () => {
    console.log(`front listening on ${listenPort}, forwarding to ${upstreamPort}`);
  });
