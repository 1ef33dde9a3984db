#!/usr/bin/env bash
# Refreshes the vendored GraphiQL assets in dist/ from the npm packages pinned in
# package.json / package-lock.json. The files in dist/ are committed and embedded in the
# dishpatch binary (include_bytes!), so the server needs neither npm nor a CDN at run time.
#
# To upgrade: change the versions in package.json, run `npm install --ignore-scripts
# --save-exact` here to refresh package-lock.json, then run this script and commit dist/.
# dist/index.html, dist/init.js and dist/page.css are written by hand and left alone here.
#
# After an upgrade, run tests/browser/graphiql.mjs: its "dialogs" step fails if the style
# hash in CSP.txt no longer matches the scroll-lock <style> GraphiQL's dialogs inject (the
# console error names the new hash).
set -euo pipefail
cd "$(dirname "$0")"

npm ci --ignore-scripts --no-audit --no-fund

dist=dist
mkdir -p "$dist"

# copy SRC NAME: the published production build, byte for byte except for a trailing
# `//# sourceMappingURL=` / `/*# sourceMappingURL=... */` comment, dropped because the
# source maps are not shipped (browsers with DevTools open would ask for them and get 404).
copy() {
  local src="node_modules/$1" name="$2"
  [[ -f "$src" ]] || { echo "update.sh: missing $src" >&2; exit 1; }
  sed -E '/^(\/\/|\/\*)# sourceMappingURL=/d' "$src" >"$dist/$name"
}

copy react/umd/react.production.min.js react.production.min.js
copy react-dom/umd/react-dom.production.min.js react-dom.production.min.js
# GraphiQL 4's UMD bundle: includes graphql-js, @graphiql/react, @graphiql/toolkit
# (createGraphiQLFetcher) and graphql-ws; expects the React and ReactDOM globals.
copy graphiql/graphiql.min.js graphiql.min.js
copy graphiql/graphiql.min.css graphiql.min.css

# Licence notices of every installed package (a superset of what the bundles contain):
# each package with its copyright lines, then each distinct licence text once.
node - >"$dist/THIRD_PARTY_LICENSES.txt" <<'JS'
const fs = require('fs');
const path = require('path');
const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8'));
const bodies = new Map(); // licence text without copyright lines, whitespace folded -> packages
const out = ['Third-party software in the files of this directory, from npm (see package-lock.json).', ''];
for (const dir of Object.keys(lock.packages).filter((k) => k.startsWith('node_modules/')).sort()) {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const id = `${meta.name}@${meta.version}`;
  const file = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  const text = file ? fs.readFileSync(path.join(dir, file), 'utf8').replace(/\r/g, '') : '';
  const lines = text.split('\n');
  const copyright = lines.filter((l) => /copyright \(c\)|copyright \d|\(c\) \d/i.test(l)).map((l) => l.trim());
  out.push(`${id} (${meta.license || 'see its licence file'})`);
  for (const line of copyright) out.push(`    ${line}`);
  const body = lines.filter((l) => !copyright.includes(l.trim())).join('\n').trim();
  if (body) {
    const key = body.replace(/\s+/g, ' ');
    if (!bodies.has(key)) bodies.set(key, { body, ids: [] });
    bodies.get(key).ids.push(id);
  }
}
for (const { body, ids } of bodies.values()) {
  out.push('', '='.repeat(78), `Licence text of: ${ids.join(', ')}`, '='.repeat(78), body);
}
process.stdout.write(out.join('\n') + '\n');
JS

( cd "$dist" && ls -l --time-style=+ . | awk 'NR>1 {print $5, $NF}' && sha256sum ./*.js ./*.css )
