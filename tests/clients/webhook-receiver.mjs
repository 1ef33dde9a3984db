// A webhook receiver for dishpatch's tests: every delivery is verified with the official
// Standard Webhooks library (npm `standardwebhooks`) against the secrets the test gave it.
//
// Prints `{"port": N}` once listening on 127.0.0.1. Control, for the test (JSON bodies):
//   POST /control/secrets {"secrets": ["whsec_…", …]}  secrets to verify with
//   POST /control/mode {"mode": "ok" | "fail" | "hang"}  answer 204, 500, or never
//   GET  /control/received                                every delivery so far
// Any other POST is a delivery. It stops by itself after --lifetime-ms (default 10 minutes).
import http from "node:http";
import { Webhook } from "standardwebhooks";

const args = process.argv.slice(2);
const lifetime = Number(args[args.indexOf("--lifetime-ms") + 1] || 600000);

let secrets = [];
let mode = "ok";
const received = [];
const hanging = new Set();

function readBody(request) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

const server = http.createServer(async (request, response) => {
  const body = await readBody(request);
  if (request.url.startsWith("/control/")) {
    if (request.method === "GET" && request.url === "/control/received") {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(received));
      return;
    }
    const input = JSON.parse(body || "{}");
    if (request.url === "/control/secrets") secrets = input.secrets;
    if (request.url === "/control/mode") mode = input.mode;
    response.writeHead(204);
    response.end();
    return;
  }
  const headers = {
    "webhook-id": request.headers["webhook-id"] ?? "",
    "webhook-timestamp": request.headers["webhook-timestamp"] ?? "",
    "webhook-signature": request.headers["webhook-signature"] ?? "",
  };
  // Which of the given secrets verifies this delivery (each one alone), per the library.
  const verifiedWith = secrets.map((secret) => {
    try {
      new Webhook(secret).verify(body, headers);
      return true;
    } catch {
      return false;
    }
  });
  let payload = null;
  try {
    payload = JSON.parse(body);
  } catch {
    payload = null;
  }
  received.push({
    path: request.url,
    id: headers["webhook-id"],
    timestamp: headers["webhook-timestamp"],
    signatures: headers["webhook-signature"].split(" ").filter(Boolean).length,
    contentType: request.headers["content-type"] ?? null,
    verifiedWith,
    mode,
    type: payload?.type ?? null,
    payload,
  });
  if (mode === "fail") {
    response.writeHead(500, { "content-type": "text/plain" });
    response.end("receiver is failing on purpose");
  } else if (mode === "hang") {
    hanging.add(response);
  } else {
    response.writeHead(204);
    response.end();
  }
});

server.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
setTimeout(() => {
  for (const response of hanging) response.destroy();
  server.close();
  process.exit(0);
}, lifetime).unref();
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
