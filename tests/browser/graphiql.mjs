// Drives dishpatch's self-hosted GraphiQL page (GET /graphql) in Debian's Chromium and checks
// that it works with no request leaving the server's origin and no console error (CSP
// violations included).
//
//   node tests/browser/graphiql.mjs --config '<json>'      (or --config @file.json)
//
// Config (JSON object):
//   url                   server base, e.g. "http://127.0.0.1:8080" (required)
//   headers               object pasted into GraphiQL's Headers tab; must then reach the server
//                         as HTTP headers and in the WebSocket connection_init payload
//   query                 document typed into the query editor and run (required)
//   expectInResult        string the result pane must then contain (required)
//   docsType              type name to find in the documentation explorer (search box)
//   subscription          subscription document run in GraphiQL
//   subscriptionVariables optional variables (object) typed into the Variables tab for it
//   trigger               {query, variables, headers}: POSTed to `${url}/graphql` with node's
//                         fetch once the subscription is running ("another client"); any
//                         "{{unique}}" inside a variables string is replaced by a fresh UUID
//   expectInSubscription  string the result pane must contain after the trigger
//   dialogs               open and close the settings dialog (default true)
//   screenshot            path of a PNG taken at the end (also on failure)
//
// Prints one JSON line: {"ok":true,...} and exits 0, or {"ok":false,"failures":[...],...}
// and exits 1. Everything is bounded: the whole run gives up after 55 s.
//
// Chromium: `process.env.CHROMIUM || '/usr/bin/chromium'` (Debian's `chromium` package);
// playwright-core never downloads a browser.

import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const started = Date.now();
const TOTAL_MS = 55_000;
const failures = [];
const warnings = [];
const steps = {};
const facts = {};
let browser;
let page;
let config = {};
let finished = false;

function fail(reason) {
  failures.push(String(reason).slice(0, 500));
}

async function finish() {
  if (finished) return;
  finished = true;
  clearTimeout(watchdog);
  if (page && config.screenshot) {
    try {
      await page.screenshot({ path: config.screenshot, timeout: 5_000 });
      facts.screenshot = config.screenshot;
    } catch (error) {
      fail(`screenshot: ${error.message}`);
    }
  }
  try {
    await Promise.race([browser?.close(), sleep(5_000)]);
  } catch {
    // the process exits below anyway, and playwright kills the browser it launched
  }
  const ok = failures.length === 0;
  const summary = { ok, ms: Date.now() - started, steps, ...facts };
  if (!ok) summary.failures = failures;
  if (warnings.length) summary.warnings = warnings;
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(ok ? 0 : 1);
}

const watchdog = setTimeout(() => {
  fail(`timeout: the run took more than ${TOTAL_MS / 1000} s`);
  finish();
}, TOTAL_MS);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Calls `probe` until it returns a truthy value; that value, or undefined after `ms`. */
async function poll(probe, ms, every = 100) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() >= deadline) return undefined;
    await sleep(every);
  }
}

/** Runs one named step; a throw becomes a failure and stops the later steps. */
async function step(name, body) {
  const t0 = Date.now();
  try {
    await body();
    steps[name] = `ok ${Date.now() - t0}ms`;
  } catch (error) {
    steps[name] = 'failed';
    fail(`${name}: ${error.message.split('\n')[0]}`);
    throw error;
  }
}

function readConfig() {
  const { values } = parseArgs({ options: { config: { type: 'string' } } });
  if (!values.config) throw new Error("usage: node graphiql.mjs --config '<json>' (or @file.json)");
  const text = values.config.startsWith('@') ? readFileSync(values.config.slice(1), 'utf8') : values.config;
  const parsed = JSON.parse(text);
  for (const key of ['url', 'query', 'expectInResult']) {
    if (typeof parsed[key] !== 'string' || !parsed[key]) throw new Error(`config: "${key}" (string) is required`);
  }
  if (parsed.subscription && (!parsed.trigger || typeof parsed.expectInSubscription !== 'string')) {
    throw new Error('config: "subscription" needs "trigger" and "expectInSubscription"');
  }
  return parsed;
}

function replaceUnique(value, unique) {
  if (typeof value === 'string') return value.replaceAll('{{unique}}', unique);
  if (Array.isArray(value)) return value.map((item) => replaceUnique(item, unique));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceUnique(v, unique)]));
  }
  return value;
}

/** Non-empty `userErrors` lists anywhere in a GraphQL response. */
function userErrorsIn(value, found = []) {
  if (Array.isArray(value)) value.forEach((item) => userErrorsIn(item, found));
  else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      if (key === 'userErrors' && Array.isArray(item) && item.length) found.push(...item);
      else userErrorsIn(item, found);
    }
  }
  return found;
}

const squash = (text) => text.replace(/\s+/g, ' ').trim();
const hasHeaders = (headers, wanted) =>
  Object.entries(wanted).every(([name, value]) =>
    Object.entries(headers || {}).some(([k, v]) => k.toLowerCase() === name.toLowerCase() && v === String(value)),
  );

// GraphiQL 4 uses CodeMirror 5: each editor's wrapper element carries its instance as
// `.CodeMirror`. Text goes in the way a paste does (focus, select all, insertText: no
// auto-closed brackets or autocompletion), then is read back through the editor API; if
// the editor changed more than whitespace, the API's setValue puts the exact text.
async function fillEditor(selector, text) {
  const editor = page.locator(`${selector} .CodeMirror`).first();
  await editor.waitFor({ state: 'visible', timeout: 5_000 });
  await editor.click({ position: { x: 40, y: 10 }, timeout: 5_000 });
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.insertText(text);
  await page.keyboard.press('Escape'); // closes an autocompletion popup, if any
  await page.keyboard.press('ControlOrMeta+Home'); // shows the start of the text
  const typed = await editor.evaluate((el) => el.CodeMirror.getValue());
  if (squash(typed) !== squash(text)) {
    await editor.evaluate((el, value) => el.CodeMirror.setValue(value), text);
    facts.editorFallback = (facts.editorFallback || 0) + 1;
  }
  const now = await editor.evaluate((el) => el.CodeMirror.getValue());
  if (squash(now) !== squash(text)) throw new Error(`editor ${selector} holds ${JSON.stringify(now.slice(0, 80))}`);
  // GraphiQL re-parses the document (operation type, documentAST) 100 ms after an edit, and
  // its fetcher picks HTTP or WebSocket from that: run only once it has caught up.
  await sleep(400);
}

async function openTool(label) {
  await page.locator('.graphiql-editor-tools button', { hasText: label }).first().click({ timeout: 5_000 });
  // The visible one of the tools' editors (Variables / Headers) is the chosen tab's.
  await page.locator('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror').first()
    .waitFor({ state: 'visible', timeout: 5_000 });
}

const resultText = () =>
  page.locator('.graphiql-response .CodeMirror').first().evaluate((el) => el.CodeMirror.getValue())
    .catch(() => '');

async function run(expect, what) {
  await page.locator('.graphiql-execute-button').click({ timeout: 5_000 });
  const text = await poll(async () => {
    const value = await resultText();
    return value.includes(expect) ? value : undefined;
  }, 10_000);
  if (!text) throw new Error(`${what}: the result pane never showed ${JSON.stringify(expect)}: ${squash(await resultText()).slice(0, 300)}`);
  return text;
}

async function main() {
  config = readConfig();
  const base = new URL(config.url);
  const origin = base.origin;
  const graphqlUrl = new URL('/graphql', base).href;
  const wantHeaders = config.headers && typeof config.headers === 'object' ? config.headers : {};

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 20_000,
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  context.setDefaultTimeout(10_000);

  // Nothing may leave the server's origin: such requests are refused and are failures.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    let requestOrigin = null;
    try {
      requestOrigin = new URL(url).origin;
    } catch {
      // not a URL with an origin
    }
    if (requestOrigin !== origin) {
      fail(`off-origin request blocked: ${url}`);
      return route.abort('blockedbyclient');
    }
    return route.continue();
  });

  page = await context.newPage();
  page.on('console', (message) => {
    const text = `${message.text()}${message.location()?.url ? ` (${message.location().url})` : ''}`;
    if (message.type() === 'error') fail(`console error: ${text}`);
    else if (message.type() === 'warning') warnings.push(text.slice(0, 300));
  });
  page.on('pageerror', (error) => fail(`page error: ${error.message}`));
  page.on('crash', () => fail('the page crashed'));
  page.on('requestfailed', (request) => {
    const error = request.failure()?.errorText || 'failed';
    if (error.includes('ERR_BLOCKED_BY_CLIENT') && new URL(request.url()).origin !== origin) return; // already counted
    fail(`request failed: ${request.method()} ${request.url()}: ${error}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) fail(`HTTP ${response.status()}: ${response.request().method()} ${response.url()}`);
  });

  // What the page sends: POSTs to /graphql (headers) and WebSocket frames.
  const posts = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().startsWith(graphqlUrl)) {
      let body = null;
      try {
        body = request.postDataJSON();
      } catch {
        // not JSON
      }
      posts.push({ body, headers: request.headers() });
    }
  });
  const sockets = [];
  page.on('websocket', (socket) => {
    const record = { url: socket.url(), sent: [], received: [], closed: false };
    sockets.push(record);
    const wsOrigin = new URL(socket.url().replace(/^ws/, 'http')).origin;
    if (wsOrigin !== origin) fail(`off-origin WebSocket: ${socket.url()}`);
    const parse = (payload) => {
      try {
        return JSON.parse(typeof payload === 'string' ? payload : payload.toString());
      } catch {
        return { unparsed: String(payload).slice(0, 100) };
      }
    };
    socket.on('framesent', (frame) => record.sent.push(parse(frame.payload)));
    socket.on('framereceived', (frame) => record.received.push(parse(frame.payload)));
    socket.on('socketerror', (error) => fail(`WebSocket error: ${error}`));
    socket.on('close', () => {
      record.closed = true;
    });
  });
  // The negotiated WebSocket subprotocol, from the handshake (Chromium's DevTools protocol).
  const protocols = [];
  try {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.webSocketHandshakeResponseReceived', ({ response }) => {
      const entry = Object.entries(response.headers || {}).find(([k]) => k.toLowerCase() === 'sec-websocket-protocol');
      protocols.push(entry ? entry[1] : null);
    });
  } catch (error) {
    warnings.push(`no CDP session for the WebSocket handshake: ${error.message}`);
  }

  await step('load', async () => {
    const response = await page.goto(graphqlUrl, { waitUntil: 'load', timeout: 15_000 });
    if (!response || response.status() !== 200) throw new Error(`GET /graphql answered ${response?.status()}`);
    facts.csp = response.headers()['content-security-policy'] || null;
    if (!facts.csp) fail('GET /graphql has no Content-Security-Policy header');
    await page.locator('.graphiql-container').waitFor({ timeout: 10_000 });
    await page.locator('.graphiql-query-editor .CodeMirror').waitFor({ timeout: 10_000 });
    facts.title = await page.title();
    if (facts.title !== 'dishpatch GraphiQL') fail(`title is ${JSON.stringify(facts.title)}`);
  });

  if (config.headers !== undefined) {
    await step('headers', async () => {
      await openTool('Headers');
      const text = typeof config.headers === 'string' ? config.headers : JSON.stringify(config.headers, null, 2);
      await fillEditor('.graphiql-editor-tool .graphiql-editor:not(.hidden)', text);
    });
  }

  await step('query', async () => {
    await fillEditor('.graphiql-query-editor', config.query);
    const before = posts.length;
    await run(config.expectInResult, 'query');
    const sent = posts.slice(before).find((post) => post.body && squash(post.body.query || '') === squash(config.query));
    if (!sent) throw new Error('no POST /graphql carried the query');
    facts.httpHeadersSent = hasHeaders(sent.headers, wantHeaders);
    if (!facts.httpHeadersSent) throw new Error('the Headers tab\'s headers were not sent with the query');
  });

  if (config.docsType) {
    await step('docs', async () => {
      await page.locator('button[aria-label="Show Documentation Explorer"]').click();
      const search = page.locator('.graphiql-doc-explorer-search input').first();
      await search.waitFor({ timeout: 5_000 });
      await search.fill(config.docsType);
      const option = page.locator('.graphiql-doc-explorer-search [role="option"]', { hasText: config.docsType })
        .filter({ hasText: new RegExp(`^\\s*${config.docsType.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`) })
        .first();
      await option.click({ timeout: 5_000 });
      const title = page.locator('.graphiql-doc-explorer-title').first();
      const shown = await poll(async () => squash((await title.textContent().catch(() => '')) || '') === config.docsType, 5_000);
      if (!shown) throw new Error(`the docs explorer did not show type ${config.docsType}`);
    });
  }

  if (config.dialogs !== false) {
    // Radix dialogs inject a scroll-lock <style>: this is what exercises style-src.
    await step('dialogs', async () => {
      await page.locator('button[aria-label="Open settings dialog"]').click();
      await page.locator('[role="dialog"]').first().waitFor({ timeout: 5_000 });
      await sleep(300);
      await page.keyboard.press('Escape');
      await page.locator('[role="dialog"]').first().waitFor({ state: 'detached', timeout: 5_000 });
    });
  }

  if (config.subscription) {
    await step('subscription', async () => {
      if (config.subscriptionVariables !== undefined) {
        await openTool('Variables');
        const text = typeof config.subscriptionVariables === 'string'
          ? config.subscriptionVariables
          : JSON.stringify(config.subscriptionVariables, null, 2);
        await fillEditor('.graphiql-editor-tool .graphiql-editor:not(.hidden)', text);
      }
      await fillEditor('.graphiql-query-editor', config.subscription);
      const socketsBefore = sockets.length;
      await page.locator('.graphiql-execute-button').click({ timeout: 5_000 });
      // Running = a new socket was acknowledged and carries our subscribe message.
      const socket = await poll(() => sockets.slice(socketsBefore).find((s) =>
        s.received.some((m) => m.type === 'connection_ack') && s.sent.some((m) => m.type === 'subscribe')), 10_000);
      if (!socket) {
        const seen = sockets.slice(socketsBefore).map((s) => ({ sent: s.sent.map((m) => m.type), received: s.received.map((m) => m.type) }));
        throw new Error(`the subscription did not start over a WebSocket: ${JSON.stringify(seen)}; result: ${squash(await resultText()).slice(0, 200)}`);
      }
      const init = socket.sent.find((m) => m.type === 'connection_init');
      facts.wsProtocol = protocols.at(-1) ?? null;
      facts.wsMessagesSent = [...new Set(socket.sent.map((m) => m.type))];
      facts.wsInitHeadersSent = Boolean(init) && hasHeaders(init.payload, wantHeaders);
      if (protocols.length && facts.wsProtocol !== 'graphql-transport-ws') {
        throw new Error(`the WebSocket spoke ${JSON.stringify(facts.wsProtocol)}, not graphql-transport-ws`);
      }
      if (!facts.wsInitHeadersSent) throw new Error('connection_init did not carry the Headers tab\'s headers');
      await sleep(750); // let the server register the subscriber before the other client acts

      const unique = randomUUID();
      const trigger = config.trigger;
      const response = await fetch(graphqlUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...(trigger.headers || {}) },
        body: JSON.stringify({ query: trigger.query, variables: replaceUnique(trigger.variables || {}, unique) }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await response.json().catch(() => null);
      facts.trigger = { status: response.status, data: body?.data ?? null };
      if (!response.ok || !body || body.errors) throw new Error(`trigger: HTTP ${response.status} ${JSON.stringify(body?.errors ?? body).slice(0, 300)}`);
      const userErrors = userErrorsIn(body.data);
      if (userErrors.length) throw new Error(`trigger: userErrors ${JSON.stringify(userErrors).slice(0, 300)}`);

      const text = await poll(async () => {
        const value = await resultText();
        return value.includes(config.expectInSubscription) ? value : undefined;
      }, 10_000);
      if (!text) throw new Error(`the result pane never showed ${JSON.stringify(config.expectInSubscription)}: ${squash(await resultText()).slice(0, 300)}`);
      facts.subscriptionResult = squash(text).slice(0, 300);
      facts.wsMessagesReceived = [...new Set(socket.received.map((m) => m.type))];
      // Stop it (the execute button is the stop button while a subscription runs).
      await page.locator('.graphiql-execute-button').click({ timeout: 5_000 });
      await poll(() => socket.sent.some((m) => m.type === 'complete') || socket.closed, 3_000);
    });
  }

  await sleep(300); // late console errors
}

try {
  await main();
} catch (error) {
  if (!failures.length) fail(error.message);
}
await finish();
