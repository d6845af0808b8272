'use strict'
// Tests of the plugin (main.js + the built wasm in dist/) inside the PeerTube
// stand-in. Needs scripts/build-plugin.sh to have run first.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { runHost, validatePackageJson, BUILTIN_CATEGORIES } = require('./peertube-host')

const PLUGIN_DIR = path.join(__dirname, '..')
const DIST = path.join(PLUGIN_DIR, 'dist')

// The table as written in the RECON integration spec, typed in independently
// of the Rust crate so that a wrong table in both places still fails here.
const EXPECTED = [
  [100, 'Agriculture & Livestock'], [101, 'Civil Organization'], [102, 'Communications'],
  [103, 'Food Systems'], [104, 'Foundational Skills'], [105, 'Logistics'],
  [106, 'Medical'], [107, 'Navigation'], [108, 'Operations'],
  [109, 'Power Systems'], [110, 'Preservation & Storage'], [111, 'Security'],
  [112, 'Shelter & Construction'], [113, 'Technology'], [114, 'Tools & Equipment'],
  [115, 'Vehicles'], [116, 'Water Systems'], [117, 'Wilderness Skills']
].map(([id, label]) => ({ id, label }))

function slugify (label) {
  return label.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean).join('-')
}

// FNV-1a 64 over `id\tlabel\tslug\n` lines: shared_constants::fingerprint, redone in JS.
function fingerprintOf (rows) {
  const text = rows.map(r => `${r.id}\t${r.label}\t${slugify(r.label)}\n`).join('')
  let h = 0xcbf29ce484222325n
  for (const b of Buffer.from(text, 'utf8')) {
    h ^= BigInt(b)
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn
  }
  return h.toString(16).padStart(16, '0')
}

test('dist/ holds the built wasm and glue', () => {
  for (const f of ['plugin_wasm.js', 'plugin_wasm_bg.wasm']) {
    assert.ok(fs.existsSync(path.join(DIST, f)), `plugin-js/dist/${f} is missing: run scripts/build-plugin.sh first`)
  }
})

test('package.json passes PeerTube validation', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(PLUGIN_DIR, 'package.json'), 'utf8'))
  assert.deepEqual(validatePackageJson(pkg), { result: true, badFields: [] })
  assert.equal(pkg.name, 'peertube-plugin-recon-domains')
  assert.equal(pkg.engine.peertube, '>=6.0.0')
  assert.equal(typeof pkg.homepage, 'string')
  assert.equal(typeof pkg.bugs, 'string')
})

test('npm pack ships main.js, the glue and the wasm', () => {
  const out = spawnSync('npm', ['pack', '--dry-run', '--json'], { cwd: PLUGIN_DIR, encoding: 'utf8' })
  assert.equal(out.status, 0, out.stderr)
  const files = JSON.parse(out.stdout)[0].files.map(f => f.path)
  for (const f of ['package.json', 'main.js', 'changes.js', 'dist/plugin_wasm.js', 'dist/plugin_wasm_bg.wasm']) {
    assert.ok(files.includes(f), `${f} not in the package (files field): ${files.join(', ')}`)
  }
  assert.ok(!files.some(f => f.startsWith('test/')), 'tests must not ship')
})

test('register adds exactly the RECON table, the route answers it, unregister removes it', async () => {
  const r = await runHost(PLUGIN_DIR)
  assert.deepEqual(r.registered, EXPECTED)
  assert.deepEqual(r.refused, [])
  assert.deepEqual(r.warnings, [])
  assert.equal(r.builtinsIntact, true)
  assert.deepEqual(r.afterUnregister, [])
  assert.equal(r.route.status, 200)
  assert.deepEqual(r.route.body.categories, EXPECTED)
  assert.deepEqual(r.route.body.refused, [])
  assert.equal(r.route.body.fingerprint, fingerprintOf(EXPECTED))
  assert.match(r.route.body.version, /^\d+\.\d+\.\d+\+taxonomy\.\d+$/)
  assert.ok(r.routes.includes('GET /taxonomy'), r.routes.join(', '))
})

test('the wasm exports answer lookups', () => {
  const t = require(path.join(DIST, 'plugin_wasm.js'))
  assert.equal(t.categoryId('Preservation & Storage'), 110)
  assert.equal(t.categoryId('preservation & storage'), undefined)
  assert.equal(t.label(106), 'Medical')
  assert.equal(t.label(106.5), undefined)
  assert.equal(t.label(18), undefined)
  assert.equal(t.fingerprint(), fingerprintOf(EXPECTED))
})

test('an id PeerTube already holds is refused, logged, and left alone at unregister', async () => {
  const r = await runHost(PLUGIN_DIR, { occupy: { 105: 'Somebody else', 111: 'Another' } })
  assert.deepEqual(r.refused.map(c => c.id), [105, 111])
  assert.deepEqual(r.registered.map(c => c.id), EXPECTED.map(c => c.id).filter(id => id !== 105 && id !== 111))
  assert.equal(r.warnings.length, 2)
  assert.match(r.warnings[0], /105/)
  assert.match(r.warnings[0], /Somebody else/)
  assert.deepEqual(r.route.body.refused, [105, 111])
  assert.equal(r.occupiedKept, true, 'unregister must not delete ids it did not add')
  assert.deepEqual(r.afterUnregister, [])
})

test('register again after unregister (PeerTube update/restart) works', async () => {
  const a = await runHost(PLUGIN_DIR)
  const b = await runHost(PLUGIN_DIR)
  assert.deepEqual(b.registered, a.registered)
  assert.deepEqual(b.afterUnregister, [])
})

test('register() stays under 50 ms in a fresh process (cold wasm load)', () => {
  const out = spawnSync(process.execPath, [path.join(__dirname, 'peertube-host.js'), PLUGIN_DIR], { encoding: 'utf8' })
  assert.equal(out.status, 0, out.stderr)
  const { registerMs } = JSON.parse(out.stdout)
  assert.ok(registerMs < 50, `register took ${registerMs} ms`)
})

test('a package without its .wasm fails to register and leaves nothing behind', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recon-plugin-nowasm-'))
  try {
    fs.copyFileSync(path.join(PLUGIN_DIR, 'package.json'), path.join(dir, 'package.json'))
    fs.copyFileSync(path.join(PLUGIN_DIR, 'main.js'), path.join(dir, 'main.js'))
    fs.copyFileSync(path.join(PLUGIN_DIR, 'changes.js'), path.join(dir, 'changes.js'))
    fs.mkdirSync(path.join(dir, 'dist'))
    fs.copyFileSync(path.join(DIST, 'plugin_wasm.js'), path.join(dir, 'dist', 'plugin_wasm.js'))
    await assert.rejects(runHost(dir), /register\(\) failed/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('built-in categories in the host are PeerTube\'s 18', () => {
  assert.equal(Object.keys(BUILTIN_CATEGORIES).length, 18)
  assert.equal(BUILTIN_CATEGORIES[1], 'Music')
  assert.equal(BUILTIN_CATEGORIES[18], 'Food')
})
