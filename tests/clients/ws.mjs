// graphql-transport-ws subscription client for dishpatch's Rust integration tests.
//
// Usage:
//   node tests/clients/ws.mjs --url ws://127.0.0.1:PORT/graphql/ws \
//     [--params '{"Authorization":"Bearer x"}'] --query 'subscription { ... }' \
//     [--variables '{...}'] [--count N] [--timeout-ms M]
//
// Uses the reference `graphql-ws` client (non-lazy, no retries, so connection
// failures and close codes surface) and prints one JSON line per event:
//   {"event":"connected","payload":<ack payload>}  ack received; subscribe already sent
//   {"event":"next","payload":<ExecutionResult>}
//   {"event":"error","payload":[<GraphQLError>...]}  server sent an `error` message
//   {"event":"complete"}                               server sent `complete`
//   {"event":"socket_error","message":"..."}           transport/protocol error
//   {"event":"closed","code":N,"reason":"...","wasClean":bool}
//   {"event":"timeout"}
// After --count `next` events (default: unlimited) it unsubscribes, disposes the
// client (close 1000) and exits once `closed` is printed. After `error` or
// `complete` it also disposes and exits. Any socket close ends the process.
// Exit codes: 0 = --count reached (or, without --count, server completed),
// 1 = anything else (early close, error, ...), 2 = timeout (default 10000 ms),
// 64 = bad usage.
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { createClient } from 'graphql-ws';

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      url: { type: 'string' },
      params: { type: 'string' },
      query: { type: 'string' },
      variables: { type: 'string' },
      count: { type: 'string' },
      'timeout-ms': { type: 'string', default: '10000' },
    },
  }));
  if (!args.url || !args.query) throw new Error('--url and --query are required');
} catch (err) {
  console.error(`ws.mjs: ${err.message}`);
  process.exit(64);
}

const emit = (obj) => console.log(JSON.stringify(obj));
const wanted = args.count === undefined ? Infinity : Number(args.count);
let received = 0;
let finishing = false; // once set, ignore further subscription callbacks
let exitCode = 1;

setTimeout(() => {
  emit({ event: 'timeout' });
  process.exit(2);
}, Number(args['timeout-ms'])).unref();

const client = createClient({
  url: args.url,
  webSocketImpl: WebSocket,
  connectionParams: args.params ? JSON.parse(args.params) : undefined,
  lazy: false,
  retryAttempts: 0,
  onNonLazyError: () => {}, // reported through on.error / on.closed instead
  on: {
    // Defer so the subscribe frame (sent right after the ack) is written first.
    connected: (_socket, payload) => setImmediate(() => emit({ event: 'connected', payload })),
    error: (err) => emit({ event: 'socket_error', message: String(err?.message ?? err) }),
    closed: (ev) => {
      emit({ event: 'closed', code: ev.code, reason: ev.reason, wasClean: ev.wasClean });
      process.exit(exitCode);
    },
  },
});

function finish(code) {
  if (finishing) return;
  finishing = true;
  exitCode = code;
  unsubscribe();
  client.dispose().catch(() => {});
}

const unsubscribe = client.subscribe(
  { query: args.query, variables: args.variables ? JSON.parse(args.variables) : undefined },
  {
    next: (payload) => {
      if (finishing) return;
      emit({ event: 'next', payload });
      if (++received >= wanted) finish(0);
    },
    error: (err) => {
      if (finishing) return;
      // Close events / socket errors also land here; those are already printed above.
      if (Array.isArray(err)) {
        emit({ event: 'error', payload: err });
        finish(1);
      }
    },
    complete: () => {
      if (finishing) return;
      emit({ event: 'complete' });
      finish(wanted === Infinity ? 0 : 1);
    },
  },
);
