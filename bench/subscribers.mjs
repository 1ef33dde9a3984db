#!/usr/bin/env node
// N graphql-transport-ws subscribers on one `restaurantOrders` feed, for bench/subscriptions.py.
//
//   BENCH_TOKEN=... node bench/subscribers.mjs --urls ws://127.0.0.1:18090/graphql \
//       --count 1000 --restaurant <global id> [--batch 200] [--max-seconds 900]
//
// It opens --count sockets, spread round-robin over --urls, --batch at a time: each sends
// `connection_init` with the bearer token, waits for `connection_ack`, then subscribes. Then it
// prints one JSON line on stdout, {"type":"ready","subscribed":n,"failed":f,...}. Each `next`
// is stamped on arrival (ms since the epoch, performance.timeOrigin + performance.now()) under
// the key `<order id>:<version>`; when a key has reached every subscribed client it prints
// {"type":"all","key":k,"t":last}. Commands on stdin, one a line:
//   mark   start counting this process's CPU time (answers {"type":"marked"})
//   cpu    CPU time since `mark` (answers {"type":"cpu","user_ms":..,"system_ms":..})
//   done   print the summary line and exit (also on SIGTERM, SIGINT, stdin closing, and after
//          --max-seconds)
// The summary, {"type":"summary","events":{key:{count,dups,max,median,min}},...}, says per key
// how many distinct clients received it, how many receptions were duplicates, and the last,
// median and first receive times; plus unexpected closes, errors and protocol failures.
// Node 20+, and the `ws` package of tests/clients (`npm ci --prefix tests/clients`).

import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(ROOT, 'tests', 'clients', 'package.json'));
let WebSocket;
try {
  WebSocket = require('ws');
} catch {
  console.error('subscribers: the `ws` package is missing; run `npm ci --prefix tests/clients`');
  process.exit(2);
}

const { values: options } = parseArgs({
  options: {
    urls: { type: 'string' },
    count: { type: 'string', default: '1000' },
    batch: { type: 'string', default: '200' },
    restaurant: { type: 'string' },
    'batch-timeout': { type: 'string', default: '60' },
    'max-seconds': { type: 'string', default: '900' },
  },
});
const URLS = (options.urls ?? '').split(',').filter(Boolean);
const COUNT = Number(options.count);
const BATCH = Math.max(1, Number(options.batch));
const BATCH_TIMEOUT_MS = Number(options['batch-timeout']) * 1000;
const TOKEN = process.env.BENCH_TOKEN ?? '';
const RESTAURANT = options.restaurant;
if (!URLS.length || !(COUNT > 0) || !RESTAURANT || !TOKEN) {
  console.error('usage: BENCH_TOKEN=... subscribers.mjs --urls ws://... --count N --restaurant ID');
  process.exit(2);
}

const QUERY = 'subscription($r: ID!) { restaurantOrders(restaurantId: $r) { id status version } }';
const INIT = JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${TOKEN}` } });
const SUBSCRIBE = JSON.stringify({ id: '1', type: 'subscribe', payload: { query: QUERY, variables: { r: RESTAURANT } } });
const PONG = JSON.stringify({ type: 'pong' });

const now = () => performance.timeOrigin + performance.now();
const emit = (value) => process.stdout.write(JSON.stringify(value) + '\n');

/** @type {{ws: WebSocket, subscribed: boolean}[]} */
const clients = [];
/** key -> {times: Float64Array (NaN: not received), count, dups, announced} */
const events = new Map();
let expected = COUNT; // the clients that subscribed, once all tried
let ready = false;
let stopping = false;
const closes = {}; // close code -> sockets closed after subscribing, not by us
const failures = {}; // reason -> sockets that never subscribed
const samples = []; // the first few odd things, for the report
let errorsReceived = 0; // `error` messages and `next` with `errors`
let completes = 0; // `complete` from the server (the stream ended)
let unparsable = 0;
let cpuMark = null;

function sample(what) {
  if (samples.length < 20) samples.push(what);
}

function bump(table, key) {
  table[key] = (table[key] ?? 0) + 1;
}

function record(key, client, t) {
  let event = events.get(key);
  if (!event) {
    event = { times: new Float64Array(COUNT).fill(NaN), count: 0, dups: 0, announced: false };
    events.set(key, event);
  }
  if (!Number.isNaN(event.times[client])) {
    event.dups += 1;
    return;
  }
  event.times[client] = t;
  event.count += 1;
  if (ready && !event.announced && event.count >= expected) {
    event.announced = true;
    emit({ type: 'all', key, t });
  }
}

function onMessage(index, client, data, done, fail) {
  const t = now();
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    unparsable += 1;
    return;
  }
  switch (message.type) {
    case 'next': {
      const payload = message.payload ?? {};
      if (payload.errors) {
        errorsReceived += 1;
        sample({ client: index, errors: payload.errors });
      }
      const order = payload.data?.restaurantOrders;
      if (order) record(`${order.id}:${order.version}`, index, t);
      break;
    }
    case 'connection_ack':
      client.ws.send(SUBSCRIBE, (error) => {
        if (error) {
          fail(`subscribe: ${error.message}`);
        } else {
          client.subscribed = true;
          done(true);
        }
      });
      break;
    case 'ping':
      client.ws.send(PONG);
      break;
    case 'pong':
      break;
    case 'error':
      errorsReceived += 1;
      sample({ client: index, error: message.payload });
      break;
    case 'complete':
      completes += 1;
      sample({ client: index, complete: message.id });
      break;
    default:
      sample({ client: index, unexpected: message });
  }
}

/** Opens client `index`; resolves true once it subscribed, false if it could not. */
function open(index) {
  return new Promise((resolve) => {
    const url = URLS[index % URLS.length];
    const ws = new WebSocket(url, 'graphql-transport-ws', { perMessageDeflate: false, handshakeTimeout: BATCH_TIMEOUT_MS });
    const client = { ws, subscribed: false, closed: false };
    clients[index] = client;
    let settled = false;
    const timer = setTimeout(() => {
      fail('no subscription within the batch timeout');
      ws.terminate();
    }, BATCH_TIMEOUT_MS);
    function done(ok) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(ok);
    }
    function fail(reason) {
      if (settled) return;
      bump(failures, reason);
      done(false);
    }
    ws.on('open', () => ws.send(INIT));
    ws.on('message', (data) => onMessage(index, client, data, done, fail));
    ws.on('error', (error) => {
      if (!settled) fail(`error: ${error.message}`);
      else if (!stopping) sample({ client: index, socketError: error.message });
    });
    ws.on('close', (code, reason) => {
      client.closed = true;
      if (!settled) {
        fail(`closed ${code} before subscribing: ${reason}`);
      } else if (!stopping && client.subscribed) {
        bump(closes, String(code));
        sample({ client: index, closed: code, reason: reason.toString() });
        if (ready) {
          // Keys still arriving are complete once every client still open has them.
          expected -= 1;
          announceComplete();
        }
      }
    });
  });
}

/** Announces the keys every client still open has received. */
function announceComplete() {
  for (const [key, event] of events) {
    if (!event.announced && event.count >= expected) {
      event.announced = true;
      let last = -Infinity;
      for (const t of event.times) if (t > last) last = t;
      emit({ type: 'all', key, t: last });
    }
  }
}

function median(sorted) {
  const n = sorted.length;
  if (!n) return null;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

function cpuSinceMark() {
  const used = process.cpuUsage(cpuMark ?? undefined);
  return { user_ms: used.user / 1000, system_ms: used.system / 1000 };
}

function finish(reason) {
  if (stopping) return;
  stopping = true;
  const summary = {};
  for (const [key, event] of events) {
    const times = Array.from(event.times).filter((t) => !Number.isNaN(t)).sort((a, b) => a - b);
    summary[key] = { count: event.count, dups: event.dups, min: times[0] ?? null, median: median(times), max: times.at(-1) ?? null };
  }
  const line = JSON.stringify({
    type: 'summary', reason, clients: COUNT, subscribed, open: expected, events: summary, closes, failures,
    errors: errorsReceived, completes, unparsable, samples, cpu: cpuSinceMark(),
  }) + '\n';
  process.stdout.write(line, () => {
    for (const client of clients) client?.ws.terminate();
    process.exit(0);
  });
}

process.on('SIGTERM', () => finish('SIGTERM'));
process.on('SIGINT', () => finish('SIGINT'));
setTimeout(() => finish('max-seconds'), Number(options['max-seconds']) * 1000).unref();

const commands = readline.createInterface({ input: process.stdin });
commands.on('line', (line) => {
  const command = line.trim();
  if (command === 'mark') {
    cpuMark = process.cpuUsage();
    emit({ type: 'marked' });
  } else if (command === 'cpu') {
    emit({ type: 'cpu', ...cpuSinceMark() });
  } else if (command === 'done') {
    finish('done');
  }
});
commands.on('close', () => finish('stdin closed'));

const started = now();
let subscribed = 0;
for (let first = 0; first < COUNT && !stopping; first += BATCH) {
  const batch = [];
  for (let index = first; index < Math.min(first + BATCH, COUNT); index += 1) batch.push(open(index));
  subscribed += (await Promise.all(batch)).filter(Boolean).length;
  const opened = Math.min(first + BATCH, COUNT);
  if (opened % 1000 < BATCH || opened === COUNT) {
    console.error(`subscribers: ${subscribed} of ${opened} subscribed (${((now() - started) / 1000).toFixed(1)} s)`);
  }
}
// Clients that subscribed and closed again already are not waited for.
expected = clients.filter((client) => client?.subscribed && !client.closed).length;
ready = true;
emit({ type: 'ready', subscribed, open: expected, failed: COUNT - subscribed, failures, ms: now() - started });
// Keys that already reached everyone before `ready` (none, normally) are announced now.
announceComplete();
