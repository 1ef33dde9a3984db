// Grammar-based GraphQL fuzz client for dishpatch's Rust integration tests.
//
// Usage:
//   node tests/clients/fuzz.mjs --url http://127.0.0.1:PORT --schema schema.graphql \
//     [--count 1000] [--seed N] [--time-limit-ms 60000] [--concurrency 4] \
//     [--token NAME=BEARER ...] [--only INDEX ...] [--dump]
//
// Builds random documents from the schema's Query and Mutation roots (random fields,
// arguments inline and through variables, valid and invalid values, nested input objects,
// inline and named fragments, aliases, @include/@skip), mixes in hostile values (NUL and
// control characters, lone surrogates, 100 KB strings, SQL-ish text, huge numbers, forged
// global IDs, cursors whose sort keys have the wrong type) and now and then documents over
// the server's limits (size, tokens, aliases, depth, complexity, directives, fragment cycles),
// then POSTs them to URL/graphql, `--concurrency` at a time, each as anonymous or as one of
// the `--token` actors (`Authorization: Bearer BEARER`), chosen at random. It stops after
// --count requests or --time-limit-ms (then waits for those in flight, 15 s at most).
//
// Before fuzzing it reads a small catalog from the server (real IDs, slugs, cursors) so that
// some requests get past "not found". Request INDEX is a pure function of (seed, INDEX,
// catalog), and the catalog of a freshly seeded demo database is always the same: the seed
// is printed, `--only INDEX` sends just that request again, `--dump` prints the requests
// instead of sending them (without --url: with an empty catalog).
//
// A failure is: HTTP status >= 500 (except a 503 whose error code is QUERY_TOO_COMPLEX,
// i.e. an execution timeout, or RATE_LIMITED), an error with extensions.code
// INTERNAL_SERVER_ERROR, a body that is not JSON, or a connection error / no answer within
// 15 s. 429 is not a failure.
//
// Output (stdout, one JSON line each):
//   {"failure":KIND,"class":...,"index":I,"actor":...,"mode":...,"status":...,"code":...,
//    "requestId":...,"document":...,"variables":...,"operationName":...,"body":<500 chars>}
//       at most 3 per class (status, code, first error message prefix, error path);
//   {"unavailable":CODE,...}   the same for a 503 QUERY_TOO_COMPLEX/RATE_LIMITED, at most 3
//       per code (not failures: counted in the summary's `unavailable`);
//   {"sent":N,"failures":F,"classes":{...},"byStatus":{...},"byCode":{<first error code>:n},
//    "unavailable":{...},"seed":S,"elapsedMs":T,"perSecond":R}   last line.
// Exit codes: 0 = no failures, 1 = failures, 64 = bad usage.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  GraphQLBoolean, GraphQLNonNull, buildSchema, getNamedType, isAbstractType, isEnumType,
  isInputObjectType, isInterfaceType, isLeafType, isListType, isNonNullType, isObjectType,
} from 'graphql';

const startedAt = performance.now();

// ---------------------------------------------------------------- arguments

let args, schema, actors;
try {
  ({ values: args } = parseArgs({
    options: {
      url: { type: 'string' },
      schema: { type: 'string' },
      count: { type: 'string', default: '1000' },
      seed: { type: 'string' },
      'time-limit-ms': { type: 'string', default: '60000' },
      concurrency: { type: 'string', default: '4' },
      token: { type: 'string', multiple: true, default: [] },
      only: { type: 'string', multiple: true, default: [] },
      dump: { type: 'boolean', default: false },
    },
  }));
  const int = (name, min) => {
    const n = Number(args[name]);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  if (!args.schema) throw new Error('--schema is required');
  if (!args.url && !args.dump) throw new Error('--url is required (unless --dump)');
  args.count = int('count', 0);
  args.timeLimit = int('time-limit-ms', 1);
  args.concurrency = int('concurrency', 1);
  args.seed = args.seed === undefined ? Date.now() % 2 ** 31 : int('seed', 0);
  args.only = args.only.map((i) => {
    if (!/^\d+$/.test(i)) throw new Error('--only takes a request index');
    return Number(i);
  });
  actors = [{ name: 'anonymous' }];
  for (const t of args.token) {
    const eq = t.indexOf('=');
    if (eq < 1 || eq === t.length - 1) throw new Error(`--token wants NAME=BEARER, got ${t}`);
    actors.push({ name: t.slice(0, eq), token: t.slice(eq + 1) });
  }
  schema = buildSchema(readFileSync(args.schema, 'utf8'));
} catch (err) {
  console.error(`fuzz.mjs: ${err.message}`);
  process.exit(64);
}
const base = (args.url ?? '').replace(/\/+$/, '');
const endpoint = base.endsWith('/graphql') ? base : `${base}/graphql`;

// ---------------------------------------------------------------- values

/** mulberry32: small and fast; one stream per request, so that a request replays alone. */
function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A number token printed verbatim in the document and in JSON (2^63, 1e308, -0, ...). */
class Raw { constructor(text) { this.text = text; } }
/** An enum value: a bare name in a document, a string in JSON. */
class Enum { constructor(name) { this.name = name; } }
/** A variable reference inside an input literal. */
class Var { constructor(name) { this.name = name; } }

const hex4 = (c) => c.toString(16).padStart(4, '0');

/** A GraphQL string literal; `raw` leaves control characters unescaped (invalid source). */
function gqlString(s, raw = false) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c < 0x20 && !raw) out += `\\u${hex4(c)}`;
    else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) out += s[i] + s[++i];
    else if (c >= 0xd800 && c <= 0xdfff) out += `\\u${hex4(c)}`; // a lone surrogate
    else out += s[i];
  }
  return `${out}"`;
}

/** A value as GraphQL input syntax. */
function lit(v, raw = false) {
  if (v === null || v === undefined) return 'null';
  if (v instanceof Raw) return v.text;
  if (v instanceof Enum) return v.name;
  if (v instanceof Var) return `$${v.name}`;
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return gqlString(v, raw);
  if (Array.isArray(v)) return `[${v.map((x) => lit(x, raw)).join(', ')}]`;
  return `{${Object.entries(v).map(([k, x]) => `${k}: ${lit(x, raw)}`).join(', ')}}`;
}

/** A value as JSON text; lone surrogates come out as `\udXXX` escapes. */
function json(v) {
  if (v === null || v === undefined) return 'null';
  if (v instanceof Raw) return v.text;
  if (v instanceof Enum) return JSON.stringify(v.name);
  if (v instanceof Var) return JSON.stringify(`$${v.name}`);
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : JSON.stringify(v);
  if (typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(json).join(',')}]`;
  return `{${Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${json(x)}`).join(',')}}`;
}

const b64url = (s) => Buffer.from(s).toString('base64url');
const HUGE = ['9223372036854775807', '9223372036854775808', '-9223372036854775809', '1e308',
  '-1e308', '1e309', '5e-324', '-0', '1.0', '1E2', '123456789012345678901234567890', '2147483648',
  '-2147483649', '4294967296', '0.1e-400'].map((t) => new Raw(t));
const HOSTILE = ['', ' ', 'a\u0000b', '\u0000', 'x\u0001\u0002\u001b[31m\u007f', '\t\r\n',
  '\u0085\u00a0', '\udbff\udfff', '😀', '👩‍👩‍👧‍👦', '🇫🇷x', 'Z̴̧̛a̷l̵g̶o̸', '\u202eevil', '\ufeffbom',
  '\u2028\u2029', 'ｆｕｌｌ', 'ß', 'İi̇', "' OR '1'='1", "'; DROP TABLE users; --", '" OR ""="',
  '1; SELECT pg_sleep(5)--', "') UNION SELECT NULL,NULL--", '\\', '\\%', '%', '_', '%%', '%_%',
  '\\_', 'a%b_c', '[a-z]*', '.*', '%00', '12', '-1', '0', '1e308', '-0', 'NaN', 'Infinity',
  '9223372036854775808', '-9223372036854775809', '0x10', 'true', 'null', '[]', '{}', '{"a":1}',
  '<script>alert(1)</script>', '${jndi:ldap://x/a}', '../../../../etc/passwd',
  'http://169.254.169.254/', 'trattoria-roma', 'italian', 'Pizza', 'PIZZA ', ' sushi'];
// Lone surrogates: a JSON body holding one is refused whole, so they come rarely.
const SURROGATES = ['\ud800', 'a\udfffb', '\udc00\ud800', 'x\ud83d', '\ude00'];
const WORDS = ['pizza', 'italian', 'sushi', 'thai', 'burger', 'vegan', 'trattoria', 'roma', 'curry',
  'noodle', 'taco', 'kebab', 'bakery', 'café', 'Straße', 'ramen', 'indian', 'greek', 'a', 'the'];
const SANE_DATES = ['2026-11-01T12:00:00Z', '2026-11-01T12:00:00.123456789+02:00',
  '2030-01-01T00:00:00Z', '1970-01-01T00:00:00Z'];
// chrono reads years up to ±262143; PostgreSQL's timestamps end at 4713 BC and 294276 AD.
const FAR_DATES = ['+262142-12-31T23:59:59Z', '-262143-01-01T00:00:00Z', '-4714-11-23T00:00:00Z',
  '-4713-11-24T00:00:00Z', '+294277-01-01T00:00:00Z', '+294276-12-31T23:59:59Z',
  '-0099-01-01T00:00:00Z'];
const DATES = [...SANE_DATES, ...FAR_DATES, '9999-12-31T23:59:59Z', '+275760-09-13T00:00:00Z',
  '0000-01-01T00:00:00Z', '-0001-01-01T00:00:00Z', '2262-04-11T23:47:16.854775808Z',
  '1677-09-21T00:12:43.145224191Z', '1969-12-31T23:59:59.999999999Z', '2026-02-30T00:00:00Z',
  '2026-11-01', '2026-11-01T25:00:00Z', '2026-11-01T12:00:00+25:00', 'yesterday', '', '1700000000'];
const KINDS = ['Restaurant', 'MenuCategory', 'MenuItem', 'Review', 'User', 'ApiToken', 'Order'];
/** The kind of ID an argument or input field wants, by its name or its field's. */
const ID_KIND = { restaurantId: 'Restaurant', orderId: 'Order', menuItemId: 'MenuItem',
  userId: 'User', restaurant: 'Restaurant', order: 'Order', revokeApiToken: 'ApiToken' };
const TAGS = ['name:asc', 'name:desc', 'rating:asc', 'rating:desc', 'distance:asc', 'distance:desc'];
const DEFAULT_DIRECTION = { NAME: 'asc', RATING: 'desc', DISTANCE: 'asc' };

/** Composite types from which a selection can go arbitrarily deep (they reach a cycle). */
const deepTypes = (() => {
  const composite = Object.values(schema.getTypeMap())
    .filter((t) => (isObjectType(t) || isInterfaceType(t)) && !t.name.startsWith('__'));
  const deep = new Set(composite.map((t) => t.name));
  const leadsDeep = (t) => Object.values(t.getFields()).some((f) => deep.has(getNamedType(f.type).name));
  for (let changed = true; changed;) {
    changed = false;
    for (const t of composite) {
      if (deep.has(t.name) && !leadsDeep(t)) changed = deep.delete(t.name);
    }
  }
  return deep;
})();

/**
 * Real IDs, slugs and cursors, read from the server before fuzzing (see loadCatalog), so that
 * some requests reach past "not found": a menu item of the restaurant being ordered from, an
 * order the actor may move, a cursor of a real page.
 */
const catalog = { ids: {}, items: {}, slugs: [], cursors: {} };

// ---------------------------------------------------------------- the generator

class Gen {
  constructor(seed, index) {
    this.rng = mulberry32(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35));
    this.rng();
    this.doc = {
      vars: [], // `$vN: Type = default` declarations of the operation being built
      values: {}, // the variables object
      nextVar: 0,
      noVars: false, // building a default value: constants only
      fragments: [],
      building: new Set(), // fragments being built (not to be spread inside themselves)
      nextFragment: 0,
      aliases: 0,
      maxAliases: 30,
      maxDepth: 6,
      argsOf: new Map(), // field name -> its arguments, to alias a field asked again differently
      budget: 700_000, // bytes of long strings still allowed in the body (limit: 1 MiB)
    };
    this.clean = true; // no deliberate mistakes (see `bad`)
  }

  int(n) { return Math.floor(this.rng() * n); }
  range(lo, hi) { return lo + this.int(hi - lo + 1); }
  chance(p) { return this.rng() < p; }
  pick(a) { return a[this.int(a.length)]; }
  /** A deliberate mistake (invalid GraphQL, a value of the wrong type); never when clean. */
  bad(p) { return !this.clean && this.rng() < p; }

  // ------------------------------------------------ scalar values

  longString(literal) {
    const big = !literal || this.chance(0.03);
    const len = this.pick(big ? [2001, 4096, 65_536, 100_000]
      : [99, 100, 101, 199, 200, 201, 1999, 2000, 2001]); // around the server's limits
    const unit = this.pick(['a', '😀', 'é', '\u0000', '%', 'ab_%\\', ...(this.chance(0.1) ? ['\ud800'] : [])]);
    const text = unit.repeat(Math.ceil(len / [...unit].length)); // `len` code points, or a few more
    const bytes = Buffer.byteLength(JSON.stringify(text)); // what it takes in the body
    if (bytes > 5000) {
      if (bytes > this.doc.budget) return 'x';
      this.doc.budget -= bytes;
    }
    return text;
  }

  string(hint, literal) {
    const r = this.rng();
    if (r < 0.015) return this.pick(SURROGATES);
    if (r < 0.3) return this.pick(HOSTILE);
    if (r < 0.38) return this.longString(literal);
    if (r < 0.42) return this.pick(HOSTILE) + this.pick(WORDS) + this.pick(HOSTILE);
    switch (hint) {
      case 'idempotencyKey':
        return `key-${this.int(50)}`;
      case 'slug':
        if (catalog.slugs.length && this.chance(0.6)) return this.pick(catalog.slugs);
        return this.pick(['trattoria-roma', 'sushi-zen', 'nope', '']) + this.pick(['', '', '-1', '-2']);
      case 'deliveryAddress':
        return `${this.int(200)} Main Street`;
      default:
        return Array.from({ length: this.range(1, 3) }, () => this.pick(WORDS)).join(' ');
    }
  }

  intValue(hint) {
    if (this.bad(0.12)) return this.pick(HUGE);
    if (this.bad(0.03)) return 1.5;
    if (this.chance(0.08)) return this.pick([-1, 0, 101, 2147483647, -2147483648, 51, 6]);
    if (hint === 'first' || hint === 'last') return this.pick([0, 1, 1, 2, 3, 5, 10, 20, 100]);
    if (hint === 'rating') return this.range(1, 5);
    if (hint === 'quantity') return this.range(1, 3);
    return this.range(-2, 60);
  }

  floatValue(hint) {
    if (this.bad(0.12)) return this.pick(HUGE);
    if (this.chance(0.08)) return this.pick(['-0', '1e308', '1E2', '1.0'].map((t) => new Raw(t)));
    if (this.chance(0.1)) return this.pick([-90.0001, 90.0001, 180.5, -181, 500.5, 501, -1, 0, 5e-324]);
    if (hint === 'latitude') return 48 + this.rng() * 5;
    if (hint === 'longitude') return 2 + this.rng() * 12;
    if (hint === 'withinKm') return this.pick([0.5, 1, 5, 50, 500]);
    return this.rng() * 100;
  }

  /** A global ID (base64url of `Type:id`): real, made up, of another type, or junk. */
  globalId(hint, state) {
    const kind = ID_KIND[hint] ?? ID_KIND[state.field] ?? this.pick(KINDS);
    const r = this.rng();
    if (r < 0.35) { // from the catalog; a menu item of the restaurant just named, if any
      const items = catalog.items[state.restaurant];
      const known = kind === 'MenuItem' && items?.length && this.chance(0.8) ? items : catalog.ids[kind];
      if (known?.length) {
        const id = this.pick(known);
        if (kind === 'Restaurant') state.restaurant = id;
        return id;
      }
    }
    if (r < 0.6) return b64url(`${kind}:${this.range(1, 60)}`);
    if (r < 0.68) return b64url(`${this.pick(KINDS)}:${this.range(1, 60)}`);
    if (r < 0.76) {
      return b64url(`${kind}:${this.pick(['0', '-1', 'abc', '1.5', ' 1', '1 ', '9223372036854775807',
        '9223372036854775808', '00001', '+1', '1e3', '', '1:2', '\u0000', '١', 'NaN'])}`);
    }
    if (r < 0.79) return b64url(`${this.pick(['Spaceship', 'restaurant', 'Node', '', 'Order '])}:1`);
    if (r < 0.84) return this.randomBase64(40);
    if (r < 0.88) { // padded, or standard base64
      const raw = `${kind}:${this.range(1, 60)}`;
      return this.chance(0.5) ? Buffer.from(raw).toString('base64') : `${b64url(raw)}==`;
    }
    if (r < 0.93) return this.chance(0.8) ? this.range(1, 60) : new Raw('9223372036854775808'); // Int: an ID
    return this.bad(0.3) ? this.pick(HUGE) : this.pick(HOSTILE);
  }

  randomBase64(max) {
    return Buffer.from(Array.from({ length: this.int(max) }, () => this.int(256))).toString('base64url');
  }

  /**
   * A cursor for `after`/`before`: real ones, junk, and well-formed ones (base64url of JSON)
   * whose contents are wrong: restaurants take {"o": ordering tag, "k": sort key (int, float or
   * text, untagged), "id"}, orders a bare id, reviews {"t": time, "id"}.
   */
  cursor(state) {
    const r = this.rng();
    const real = catalog.cursors[state.field];
    if (r < 0.2 && real?.length) return this.pick(real); // maybe of another ordering
    if (r < 0.27) return this.pick(HOSTILE);
    if (r < 0.34) return this.randomBase64(30);
    const badNumber = () => this.pick([...HUGE, 1.5, -1, 0, '7', null, true, [], {}, { a: [1] }]);
    const id = () => (this.chance(0.7) ? this.range(1, 60) : badNumber());
    let position;
    const list = this.chance(0.85) ? state.field : this.pick(['restaurants', 'orders', 'reviews']);
    if (list === 'orders') {
      position = this.chance(0.6) ? this.range(-1, 400) : badNumber();
    } else if (list === 'reviews') {
      const t = this.rng();
      const times = t < 0.4 ? SANE_DATES : t < 0.75 ? FAR_DATES : [...DATES, 5, null, {}];
      position = { t: this.pick(times), id: id() };
    } else {
      const tag = this.chance(0.8) ? state.tag ?? 'name:asc' : this.pick([...TAGS, 'name', '', 'NAME:ASC']);
      const field = tag.split(':')[0];
      const good = {
        name: () => this.pick(['A', 'Pizza', 'zzz', '', '\u0000']),
        rating: () => this.range(0, 5000),
        distance: () => this.rng() / 10,
      }[field] ?? (() => 'x');
      const bad = () => this.pick([
        ...(field === 'name' ? [1, 4500, 0.25, new Raw('-0')] : ['abc', '4.5', '', 'Pizza']),
        new Raw('1e308'), new Raw('9223372036854775808'), new Raw('-9223372036854775809'), null, true,
        { nested: { k: 1 } }, [1, 'a'], 'x'.repeat(10_000)]);
      position = { o: tag, k: this.chance(0.55) ? bad() : good(), id: id() };
      if (this.chance(0.08)) delete position[this.pick(['o', 'k', 'id'])];
      if (this.chance(0.05)) position.extra = 1;
    }
    const text = json(position);
    const e = this.rng();
    if (e < 0.8) return b64url(text);
    if (e < 0.9) return Buffer.from(text).toString('base64');
    return e < 0.95 ? text : `${b64url(text)}!`;
  }

  scalar(type, hint, state, literal) {
    switch (type.name) {
      case 'Int':
        return this.intValue(hint);
      case 'Float':
        return this.floatValue(hint);
      case 'Boolean':
        return this.bad(0.08) ? this.pick(['true', 1, 0, new Enum('TRUE')]) : this.chance(0.5);
      case 'ID':
        return this.globalId(hint, state);
      case 'DateTime':
        return this.bad(0.15) ? this.pick([0, 1700000000, ...HUGE]) : this.pick(DATES);
      case 'String':
        if (hint === 'after' || hint === 'before') return this.cursor(state);
        return this.bad(0.06) ? this.pick([1, 1.5, ...HUGE]) : this.string(hint, literal);
      default: // custom scalars
        return this.string(hint, literal);
    }
  }

  wrong(literal) {
    return this.pick(['str', 1, 1.5, true, [], {}, { a: 1 }, [1, 2], new Enum('RED'), new Enum('NaN'),
      new Enum('Infinity'), ...HUGE.slice(0, 4), literal ? '' : '\ud800']);
  }

  /**
   * A value for input `type`; `hint` is the argument or input field name, `state` is shared
   * by the arguments of one field, `literal` when it goes inline into the document.
   */
  value(type, hint, state, depth, literal, noVar = false) {
    if (literal && depth > 0 && !noVar && !this.doc.noVars && this.chance(0.04)) {
      return new Var(this.variable(type, this.value(type, hint, state, depth, false)));
    }
    if (isNonNullType(type)) {
      if (this.bad(0.02)) return null;
      type = type.ofType;
    } else if (this.chance(0.04)) {
      return null;
    }
    if (isListType(type)) {
      // One item is coerced to a list (but a variable of the item's type may not stand there).
      if (this.chance(0.1)) return this.value(type.ofType, hint, state, depth + 1, literal, true);
      let n = this.int(4);
      if (hint === 'ids' && this.chance(0.15)) n = this.pick([50, 100, 101, 150]);
      if (hint === 'cuisines' && this.chance(0.15)) n = this.pick([20, 21, 40]);
      if (hint === 'lines' && this.chance(0.1)) n = this.pick([50, 51]);
      return Array.from({ length: n }, () => this.value(type.ofType, hint, state, depth + 1, literal));
    }
    if (this.bad(0.05)) return this.wrong(literal);
    if (isInputObjectType(type)) {
      if (depth > 5) return {};
      const o = {};
      for (const f of Object.values(type.getFields())) {
        const required = isNonNullType(f.type) && f.defaultValue === undefined;
        if (required ? this.bad(0.03) : !this.chance(0.5)) continue;
        o[f.name] = this.value(f.type, f.name, state, depth + 1, literal);
      }
      if (this.bad(0.02)) o.bogusField = 'x';
      if (type.name === 'RestaurantOrder' && o.field instanceof Enum) { // for the cursors' tag
        const direction = o.direction instanceof Enum ? o.direction.name : DEFAULT_DIRECTION[o.field.name];
        state.tag = `${o.field.name}:${direction}`.toLowerCase();
      }
      return o;
    }
    if (isEnumType(type)) {
      const names = type.getValues().map((v) => v.name);
      if (!this.bad(0.1)) return new Enum(this.pick(names));
      return this.pick([new Enum('NOPE'), new Enum(names[0].toLowerCase()), names[0], new Enum('null')]);
    }
    return this.scalar(type, hint, state, literal);
  }

  // ------------------------------------------------ variables, arguments, directives

  /** Declares a variable for `type` holding `value` (sometimes wrongly); returns its name. */
  variable(type, value) {
    const d = this.doc;
    const name = `v${d.nextVar++}`;
    let decl = String(type);
    if (this.bad(0.05)) {
      decl = this.pick(['String', 'Int', 'Boolean!', 'ID', '[String]', 'Unknown', 'RestaurantFilter',
        isNonNullType(type) ? String(type.ofType) : `${type}!`]);
    }
    let def = '';
    if (this.chance(0.05) && !decl.endsWith('!') && !d.noVars) { // a default: constants only
      d.noVars = true;
      def = ` = ${lit(this.value(type, '', {}, 1, true))}`;
      d.noVars = false;
    }
    d.vars.push(`$${name}: ${decl}${def}`);
    const required = isNonNullType(type);
    if (required ? this.bad(0.04) : this.chance(0.04)) return name; // declared, no value sent
    d.values[name] = (required ? this.bad(0.03) : this.chance(0.03)) ? null : value;
    return name;
  }

  /** Forgets the variables declared since `mark` (what used them was thrown away). */
  dropVariables(mark) {
    for (const v of this.doc.vars.splice(mark)) delete this.doc.values[v.slice(1, v.indexOf(':'))];
  }

  argValue(type, name, state) {
    if (this.bad(0.01)) return '$undeclared';
    if (this.chance(0.3)) return `$${this.variable(type, this.value(type, name, state, 0, false))}`;
    const mark = this.doc.vars.length;
    const text = lit(this.value(type, name, state, 0, true), this.bad(0.02));
    // A lone surrogate is a syntax error in a document (but fine in JSON): variables carry them.
    if (this.clean && /\\u[dD][89a-fA-F]/.test(text)) {
      this.dropVariables(mark);
      return `$${this.variable(type, this.value(type, name, state, 0, false))}`;
    }
    return text;
  }

  args(field, forceFirst) {
    const state = { field: field.name };
    // orderBy before after/before, so that a cursor can carry the ordering's tag.
    const defs = [...field.args].sort((a, b) => (b.name === 'orderBy') - (a.name === 'orderBy'));
    const names = defs.map((a) => a.name);
    // Mostly one paging direction (first/after or last/before), and one argument where the
    // field wants exactly one of them.
    let skip = [];
    let force = null;
    if (names.includes('first') && names.includes('last') && !this.bad(0.3)) {
      skip = this.chance(0.75) ? ['last', 'before'] : ['first', 'after'];
    } else if (/exactly one/.test(field.description ?? '') && !this.bad(0.3)) {
      force = this.pick(names);
      skip = names.filter((n) => n !== force);
    }
    if (forceFirst) skip = ['last', 'before'];
    const parts = [];
    for (const a of defs) {
      if (skip.includes(a.name)) continue;
      if (forceFirst && a.name === 'first') {
        parts.push('first: 100');
        continue;
      }
      const required = (isNonNullType(a.type) && a.defaultValue === undefined) || a.name === force;
      if (required ? this.bad(0.03) : !this.chance(0.45)) continue;
      parts.push(`${a.name}: ${this.argValue(a.type, a.name, state)}`);
    }
    if (this.bad(0.02)) parts.push('bogus: 1');
    if (parts.length && this.bad(0.01)) parts.push(parts[0]);
    return parts.length ? `(${parts.join(', ')})` : '';
  }

  condition() {
    if (this.chance(0.3)) {
      const type = this.bad(0.3) ? GraphQLBoolean : new GraphQLNonNull(GraphQLBoolean);
      return `$${this.variable(type, this.bad(0.1) ? this.pick(['yes', 1]) : this.chance(0.8))}`;
    }
    return this.bad(0.1) ? this.pick(['"yes"', '1', 'null', '$missing']) : String(this.chance(0.7));
  }

  directives(n = this.chance(0.06) ? 1 : 0) {
    let out = '';
    for (let i = 0; i < n; i++) {
      if (this.bad(0.1)) {
        out += this.pick([' @include', ' @skip(if: true, if: false)', ' @unknown', ' @deprecated',
          ' @specifiedBy(url: "x")']);
      } else {
        out += ` @${this.pick(['include', 'skip'])}(if: ${this.condition()})`;
      }
    }
    return out;
  }

  // ------------------------------------------------ selections

  field(f, depth, opts = {}) {
    const d = this.doc;
    const mark = d.vars.length;
    const args = this.args(f, opts.forceFirst);
    // The same response key with other arguments anywhere in the document would (mostly) be a
    // conflict: alias it, else leave it out.
    const conflict = d.argsOf.has(f.name) && d.argsOf.get(f.name) !== args;
    let out = '';
    if ((conflict || opts.alias || this.chance(0.08)) && d.aliases < d.maxAliases) {
      out += `a${d.aliases++}_${f.name}: `;
    } else if (conflict && !this.bad(0.2)) {
      this.dropVariables(mark);
      return '';
    } else {
      d.argsOf.set(f.name, args);
    }
    out += f.name + args + this.directives(opts.directives);
    if (!isLeafType(getNamedType(f.type))) {
      if (!this.bad(0.005)) out += ` ${this.selectionSet(getNamedType(f.type), depth + 1, opts)}`;
    } else if (this.bad(0.005)) {
      out += ' { id }';
    }
    return out;
  }

  fragmentSpread(type, depth) {
    const d = this.doc;
    const existing = d.fragments.filter((f) => f.type === type.name && !d.building.has(f.name));
    if (existing.length && this.chance(0.5)) return `...${this.pick(existing).name}`;
    const name = `F${d.nextFragment++}`;
    d.building.add(name);
    const body = this.selectionSet(type, depth);
    d.building.delete(name);
    d.fragments.push({ name, type: type.name, text: `fragment ${name} on ${type.name} ${body}` });
    return `...${name}${this.directives()}`;
  }

  /** Over-limit selections: one field going down (deep), or connection fields at 100 (complex). */
  chain(type, depth, opts) {
    if (isAbstractType(type)) {
      const t = this.pick(schema.getPossibleTypes(type).filter((p) => deepTypes.has(p.name)));
      return t ? `{ ... on ${t.name} ${this.chain(t, depth, opts)} }` : '{ __typename }';
    }
    const fields = Object.values(type.getFields());
    const down = fields.filter((f) => deepTypes.has(getNamedType(f.type).name));
    if (depth >= opts.target || !down.length) {
      const leaf = fields.find((f) => isLeafType(getNamedType(f.type)));
      return `{ ${leaf ? leaf.name : '__typename'} }`;
    }
    const paged = opts.forceFirst ? down.filter((f) => f.args.some((a) => a.name === 'first')) : [];
    return `{ ${this.field(this.pick(paged.length ? paged : down), depth, opts)} }`;
  }

  selectionSet(type, depth, opts = {}) {
    if (opts.deep || opts.forceFirst) return this.chain(type, depth, opts);
    const items = [];
    const atLimit = depth >= this.doc.maxDepth;
    const fields = Object.values(type.getFields());
    const leaves = fields.filter((f) => isLeafType(getNamedType(f.type)));
    for (let n = this.range(1, atLimit ? 2 : 4); n > 0; n--) {
      const pool = atLimit || this.chance(0.4) ? leaves : fields;
      const item = pool.length ? this.field(this.pick(pool), depth) : '__typename';
      if (item) items.push(item);
    }
    if (isAbstractType(type)) {
      for (const t of schema.getPossibleTypes(type).filter(() => this.chance(0.35))) {
        items.push(`... on ${t.name}${this.directives()} ${this.selectionSet(t, depth)}`);
      }
      if (this.bad(0.02)) items.push('... on Money { amount }'); // a type it can never be
    }
    if (this.chance(0.08)) items.push('__typename');
    if (this.chance(0.04)) {
      items.push(`...${this.chance(0.5) ? ` on ${type.name}` : ''}${this.directives()} { __typename }`);
    }
    if (!atLimit && this.chance(0.06)) items.push(this.fragmentSpread(type, depth));
    if (this.bad(0.01)) items.push('notAField');
    if (!items.length) items.push('__typename');
    return `{ ${items.join(' ')} }`;
  }

  // ------------------------------------------------ documents

  operation(kind, root, opts = {}) {
    const fields = Object.values(root.getFields());
    const items = [];
    for (let n = opts.fields ?? this.range(1, 3); n > 0; n--) {
      const item = this.field(this.pick(fields), 1, opts);
      if (item) items.push(item);
    }
    if (!items.length) items.push('__typename');
    const vars = this.doc.vars.length ? `(${this.doc.vars.join(', ')})` : '';
    this.doc.vars = [];
    const name = opts.name ?? (this.chance(0.5) ? `Op${this.int(100)}` : '');
    const shorthand = kind === 'query' && !vars && !name && this.chance(0.5);
    return `${shorthand ? '' : `${kind}${name ? ` ${name}` : ''}${vars} `}{ ${items.join(' ')} }`;
  }

  /** One request: {mode, clean, document, variables (JSON text), operationName, body}. */
  request() {
    const d = this.doc;
    const query = schema.getQueryType();
    const mutation = schema.getMutationType();
    const normalRoot = () => (mutation && this.chance(0.25) ? ['mutation', mutation] : ['query', query]);
    const modes = [['normal', 820], ['aliases', 20], ['deep', 20], ['complex', 20], ['big', 15],
      ['tokens', 15], ['directives', 10], ['fragments', 10], ['mangle', 25], ['utf8', 10],
      ['subscription', 5], ['varShape', 10], ['operations', 20]];
    let r = this.int(modes.reduce((sum, [, w]) => sum + w, 0));
    let mode = modes.find(([, w]) => (r -= w) < 0)[0];
    if (mode === 'subscription' && !schema.getSubscriptionType()) mode = 'normal';
    let doc;
    let opName;
    let rawVars;
    switch (mode) {
      case 'aliases': // over 30 aliases
        d.maxDepth = 2;
        d.maxAliases = 1000;
        doc = this.operation('query', query, { fields: this.range(31, 60), alias: true });
        break;
      case 'deep': // usually over depth 16
        doc = this.operation('query', query, { fields: 1, deep: true, target: this.range(14, 24) });
        break;
      case 'complex': // pages of 100 in pages of 100: usually over complexity 25,000
        doc = this.operation('query', query, { fields: 1, forceFirst: true, target: this.range(4, 7) });
        break;
      case 'big': { // over 32 KiB
        d.maxDepth = 2;
        const size = this.range(33_000, 40_000);
        doc = this.chance(0.5)
          ? `# ${'x'.repeat(size)}\n${this.operation('query', query)}`
          : `query Pad { restaurants(filter: {search: ${gqlString('p'.repeat(size))}}) { totalCount } }`;
        break;
      }
      case 'tokens': { // around 2,000 tokens
        const leaves = Array.from({ length: this.range(1500, 2600) }, () => this.pick(['id', 'email']));
        doc = `{ viewer { ${leaves.join(' ')} } }`;
        break;
      }
      case 'directives': // over 4 on a field
        doc = this.operation('query', query, { fields: 1, directives: this.range(5, 9) });
        break;
      case 'fragments': {
        if (this.chance(0.5)) { // a cycle, or a fragment spreading itself
          const n = this.range(1, 3);
          const frags = Array.from({ length: n }, (_, i) => `fragment C${i} on User { ...C${(i + 1) % n} }`);
          doc = `{ viewer { ...C0 } } ${frags.join(' ')}`;
        } else { // blow-up: each fragment spreads the one before twice
          const n = this.range(10, 30);
          const frags = Array.from({ length: n }, (_, i) => (i === 0
            ? 'fragment B0 on Restaurant { id name }'
            : `fragment B${i} on Restaurant { ...B${i - 1} ...B${i - 1} }`));
          doc = `{ restaurants(first: 1) { nodes { ...B${n - 1} } } } ${frags.join(' ')}`;
        }
        break;
      }
      case 'subscription': // not over HTTP
        doc = this.operation('subscription', schema.getSubscriptionType());
        break;
      case 'operations': { // two operations, and an operationName (or not)
        const [kind, root] = normalRoot();
        const first = this.operation(kind, root, { name: 'A' });
        const second = this.operation('query', query, { name: this.chance(0.9) ? 'B' : 'A' });
        doc = `${this.chance(0.1) ? first.replace(/^(\w+) A/, '$1') : first} ${second}`;
        opName = this.pick(['A', 'B', 'C', undefined, null, '']);
        break;
      }
      default: { // normal, mangle, utf8, varShape: half of them clean
        d.maxDepth = this.range(2, 6);
        this.clean = this.chance(0.5);
        const [kind, root] = normalRoot();
        doc = this.operation(kind, root);
        if (mode === 'varShape') rawVars = this.pick(['[]', '"{}"', '1', 'true', '[{}]', '{"__proto__":{}}']);
      }
    }
    if (d.fragments.length) doc += ` ${d.fragments.map((f) => f.text).join(' ')}`;
    if (mode === 'mangle') { // cut short, a few characters dropped, or one token too many
      const at = this.int(doc.length);
      const m = this.rng();
      if (m < 0.3) doc = doc.slice(0, at);
      else if (m < 0.6) doc = doc.slice(0, at) + doc.slice(at + 1 + this.int(5));
      else {
        const extra = this.pick(['{', '}', '(', ')', '"', '"""', '$', '@', '...', ':', '!', '\0', '#', '\\u']);
        doc = doc.slice(0, at) + extra + doc.slice(at);
      }
    }
    let variables = rawVars;
    if (variables === undefined) {
      if (Object.keys(d.values).length || this.chance(0.3)) variables = json(d.values);
      else if (this.chance(0.05)) variables = 'null';
    }
    let body = `{"query":${JSON.stringify(doc)}`;
    if (variables !== undefined) body += `,"variables":${variables}`;
    if (opName !== undefined) body += `,"operationName":${JSON.stringify(opName)}`;
    body += '}';
    if (mode === 'utf8') { // invalid UTF-8 inside the query string
      const at = body.indexOf('{', 10) + 1 || 11;
      // A stray byte, a bad continuation, a surrogate, past U+10FFFF, cut short.
      const bytes = Buffer.from(this.pick([[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80],
        [0xe2]]));
      body = Buffer.concat([Buffer.from(`${body.slice(0, at)} "`), bytes, Buffer.from(`" ${body.slice(at)}`)]);
    }
    return { mode, clean: this.clean, document: doc, variables, operationName: opName, body };
  }
}

function makeRequest(index) {
  const gen = new Gen(args.seed, index);
  const req = gen.request();
  req.index = index;
  req.actor = gen.pick(actors);
  req.accept = gen.chance(0.85) ? 'application/graphql-response+json' : 'application/json';
  return req;
}

// ---------------------------------------------------------------- the catalog

/** Fills `catalog` from what the actors can read; whatever fails is left out. */
async function loadCatalog() {
  const sets = {};
  const add = (key, value) => {
    if (typeof value === 'string') (sets[key] ??= new Set()).add(value);
  };
  const read = async (actor, query) => {
    try {
      const headers = { 'content-type': 'application/json', accept: 'application/json' };
      if (actor.token) headers.authorization = `Bearer ${actor.token}`;
      const body = JSON.stringify({ query });
      const signal = AbortSignal.timeout(15_000);
      return (await (await fetch(endpoint, { method: 'POST', headers, body, signal })).json())?.data ?? {};
    } catch {
      return {};
    }
  };
  const edges = (connection, list, kind) => {
    for (const e of connection?.edges ?? []) {
      add(`cursor:${list}`, e?.cursor);
      add(`id:${kind}`, e?.node?.id);
    }
  };
  const pub = await read(actors[0], `{ restaurants(first: 100) { edges { cursor node { id slug
    menu { categories { id } items { id } }
    reviews(first: 3) { edges { cursor node { id author { id } } } } } } } }`);
  const restaurants = [];
  edges(pub.restaurants, 'restaurants', 'Restaurant');
  for (const { node } of pub.restaurants?.edges ?? []) {
    if (!node?.id) continue;
    restaurants.push(node.id);
    add('slug', node.slug);
    for (const c of node.menu?.categories ?? []) add('id:MenuCategory', c?.id);
    for (const i of node.menu?.items ?? []) {
      add('id:MenuItem', i?.id);
      add(`items:${node.id}`, i?.id);
    }
    edges(node.reviews, 'reviews', 'Review');
    for (const e of node.reviews?.edges ?? []) add('id:User', e?.node?.author?.id);
  }
  for (const actor of actors.slice(1)) {
    const me = await read(actor, `{ availableDeliveries(first: 20) { edges { node { id } } }
      viewer { id apiTokens { id } orders(last: 20) { edges { cursor node { id } } } } }`);
    add('id:User', me.viewer?.id);
    for (const t of me.viewer?.apiTokens ?? []) add('id:ApiToken', t?.id);
    edges(me.viewer?.orders, 'orders', 'Order');
    for (const e of me.availableDeliveries?.edges ?? []) add('id:Order', e?.node?.id);
    // Orders of the restaurants the actor works for (the others are errors, ignored).
    const staff = await read(actor, `{ ${restaurants.slice(0, 25).map((id, i) => `r${i}: restaurant(id: `
      + `${JSON.stringify(id)}) { orders(last: 5) { edges { cursor node { id } } } }`).join(' ')} }`);
    for (const r of Object.values(staff)) edges(r?.orders, 'orders', 'Order');
  }
  const list = (key) => [...(sets[key] ?? [])];
  for (const kind of KINDS) catalog.ids[kind] = list(`id:${kind}`);
  for (const id of restaurants) catalog.items[id] = list(`items:${id}`);
  for (const name of ['restaurants', 'reviews', 'orders']) catalog.cursors[name] = list(`cursor:${name}`);
  catalog.slugs = list('slug');
}

// ---------------------------------------------------------------- running

const emit = (obj) => process.stdout.write(`${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n`);
/** Exits once stdout is flushed (a pipe is written asynchronously: process.exit could cut it). */
const exit = (code) => process.stdout.write('', () => process.exit(code));
const clip = (s, n) => (s.length > n ? `${s.slice(0, n)}…(${s.length} chars)` : s);
/** A message without its variable parts, to group failures. */
const normalize = (m) => String(m ?? '').replace(/request id [^)]*/g, 'request id _')
  .replace(/`[^`]*`/g, '`_`').replace(/\d+/g, 'N').slice(0, 60);
/** An error's path without list indexes and without our alias prefixes (`a3_orders` -> `orders`). */
const pathOf = (e) => (Array.isArray(e?.path)
  ? e.path.filter((p) => typeof p === 'string').map((p) => p.replace(/^a\d+_/, '')).join('.') : '');

const stats = { sent: 0, failures: 0, classes: {}, byStatus: {}, byCode: {}, unavailable: {} };
let consecutiveNetworkErrors = 0;

/** Prints the request behind a response, at most 3 per `counts[cls]`; the variables verbatim. */
function show(head, counts, cls, req, extra, text) {
  counts[cls] = (counts[cls] ?? 0) + 1;
  if (counts[cls] > 3) return;
  const vars = req.variables === undefined ? 'null'
    : req.variables.length > 8000 ? JSON.stringify(clip(req.variables, 8000)) : req.variables;
  const line = JSON.stringify({ ...head, class: cls, index: req.index, actor: req.actor.name, mode: req.mode,
    ...extra, document: clip(req.document, 8000) });
  const tail = JSON.stringify({ operationName: req.operationName, body: text.slice(0, 500) });
  emit(`${line.slice(0, -1)},"variables":${vars},${tail.slice(1)}`);
}

function fail(req, kind, status, error, text) {
  const code = error?.extensions?.code ?? null;
  const path = pathOf(error);
  const cls = kind === 'network' ? `network ${text}`
    : `${status} ${code ?? kind} ${normalize(error?.message ?? text.slice(0, 40))}${path ? ` @${path}` : ''}`;
  stats.failures++;
  const requestId = error?.extensions?.requestId;
  show({ failure: kind }, stats.classes, cls, req, { status, code, requestId }, text);
}

async function send(req) {
  const headers = { 'content-type': 'application/json', accept: req.accept };
  if (req.actor.token) headers.authorization = `Bearer ${req.actor.token}`;
  let status;
  let text;
  try {
    const signal = AbortSignal.timeout(15_000);
    const res = await fetch(endpoint, { method: 'POST', headers, body: req.body, signal });
    status = res.status;
    text = await res.text();
  } catch (err) {
    stats.sent++;
    stats.byStatus.network = (stats.byStatus.network ?? 0) + 1;
    consecutiveNetworkErrors++;
    const why = err?.name === 'TimeoutError' ? 'timeout' : (err?.cause?.code ?? err?.message);
    return fail(req, 'network', null, null, String(why));
  }
  stats.sent++;
  stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
  consecutiveNetworkErrors = 0;
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return fail(req, 'non-json', status, null, text);
  }
  const responses = Array.isArray(body) ? body : [body]; // a batch, or not
  const errors = responses.flatMap((r) => (Array.isArray(r?.errors) ? r.errors : []));
  const internal = errors.find((e) => e?.extensions?.code === 'INTERNAL_SERVER_ERROR');
  const first = errors.length ? String(errors[0]?.extensions?.code ?? 'none') : 'ok';
  stats.byCode[first] = (stats.byCode[first] ?? 0) + 1;
  if (status >= 500) {
    const benign = errors.find((e) => ['QUERY_TOO_COMPLEX', 'RATE_LIMITED'].includes(e?.extensions?.code));
    if (status === 503 && benign && !internal) { // not a failure, but worth a look
      const code = benign.extensions.code;
      return show({ unavailable: code }, stats.unavailable, code, req, { status }, text);
    }
    return fail(req, 'status', status, internal ?? errors[0], text);
  }
  if (internal) fail(req, 'internal', status, internal, text);
}

if (args.url) {
  await loadCatalog();
  console.error(`fuzz.mjs: catalog of ${KINDS.map((k) => `${catalog.ids[k].length} ${k}`).join(', ')}, `
    + `${Object.values(catalog.cursors).flat().length} cursors`);
}
const indexes = args.only.length ? args.only : Array.from({ length: args.count }, (_, i) => i);
if (args.dump) {
  for (const i of indexes) {
    const req = makeRequest(i);
    const { mode, clean, actor, accept, body, document, variables, operationName } = req;
    emit({ index: i, mode, clean, actor: actor.name, accept, bytes: body.length, document, variables,
      operationName });
  }
  exit(0);
} else {
  await run();
}

async function run() {
  console.error(`fuzz.mjs: seed ${args.seed}, ${indexes.length} requests at most, `
    + `${args.timeLimit} ms at most, ${args.concurrency} in flight, as ${actors.map((a) => a.name).join(', ')}`);
  const started = performance.now();
  const deadline = startedAt + args.timeLimit;
  let next = 0;
  const worker = async () => {
    // 50 network errors in a row: the server is gone, the rest would fail the same way.
    while (next < indexes.length && performance.now() < deadline && consecutiveNetworkErrors < 50) {
      await send(makeRequest(indexes[next++]));
      if (stats.sent % 500 === 0) console.error(`fuzz.mjs: ${stats.sent} sent, ${stats.failures} failures`);
    }
  };
  await Promise.all(Array.from({ length: args.concurrency }, worker));
  const elapsedMs = Math.round(performance.now() - started);
  const perSecond = Math.round((stats.sent / Math.max(elapsedMs, 1)) * 10_000) / 10;
  emit({ ...stats, seed: args.seed, elapsedMs, perSecond });
  exit(stats.failures ? 1 : 0);
}
