// GraphQL-over-HTTP conformance audit for dishpatch's Rust integration tests.
//
// Usage: node tests/clients/audit.mjs http://127.0.0.1:PORT/graphql
//
// Runs graphql-http's server audits (the reference implementation of the
// GraphQL over HTTP spec) against URL using Node's global fetch. Prints one
// line per audit:
//   PASS|WARN|FAIL|NOTE <id> <name>      (NOTE = failed optional MAY audit)
// followed, for non-passing audits, by an indented reason and response line.
// The last line is a JSON summary:
//   {"summary":{"ok":n,"warn":n,"error":n,"notice":n},
//    "failures":[{id,name,reason}], "warnings":[...], "notices":[...]}
// Exit code: 1 if any MUST audit failed (status "error", or the audit threw,
// e.g. connection refused), 0 otherwise. 64 on bad usage.
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <http-url-of-graphql-endpoint>');
  process.exit(64);
}

const LABEL = { ok: 'PASS', warn: 'WARN', error: 'FAIL', notice: 'NOTE' };

async function describe(res) {
  if (!res) return '(no response)';
  let body;
  try {
    body = res.bodyUsed ? '(body already consumed)' : await res.clone().text();
  } catch (err) {
    body = `(unreadable body: ${err})`;
  }
  if (body.length > 500) body = body.slice(0, 500) + '...';
  return `${res.status} content-type=${res.headers.get('content-type')} body=${JSON.stringify(body)}`;
}

const summary = { ok: 0, warn: 0, error: 0, notice: 0 };
const lists = { error: [], warn: [], notice: [] };

// Run sequentially so the output order is stable and the server sees one request at a time.
for (const { id, name, fn } of serverAudits({ url, fetchFn: fetch })) {
  let result;
  try {
    result = await fn();
  } catch (err) {
    // graphql-http throws (instead of returning a result) on fatal problems; count as MUST failure.
    result = { id, name, status: 'error', reason: `fatal: ${err?.cause ?? err}` };
  }
  summary[result.status]++;
  console.log(`${LABEL[result.status]} ${id} ${name}`);
  if (result.status !== 'ok') {
    console.log(`    reason: ${result.reason}`);
    console.log(`    response: ${await describe(result.response)}`);
    lists[result.status].push({ id, name, reason: result.reason });
  }
}

console.log(JSON.stringify({ summary, failures: lists.error, warnings: lists.warn, notices: lists.notice }));
process.exit(summary.error > 0 ? 1 : 0);
