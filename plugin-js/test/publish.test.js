'use strict'
// `npm publish --dry-run --json` on the tarball scripts/build-plugin.sh packed:
// what the npm registry and PeerTube's plugin index would get. Needs
// scripts/build-plugin.sh to have run first.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const PLUGIN_DIR = path.join(__dirname, '..')
const PKG = JSON.parse(fs.readFileSync(path.join(PLUGIN_DIR, 'package.json'), 'utf8'))

// A dry run is never logged in; every other warning is a finding.
const HARMLESS_WARNINGS = [/requires you to be logged in/]

function tarball () {
  const name = `${PKG.name}-${PKG.version}.tgz`
  const file = path.join(PLUGIN_DIR, name)
  assert.ok(fs.existsSync(file), `${file} missing: run scripts/build-plugin.sh first`)
  return file
}

function dryRun (file) {
  const r = spawnSync('npm', ['publish', '--dry-run', '--json', file], {
    cwd: PLUGIN_DIR,
    encoding: 'utf8',
    timeout: 120000,
    // The parent `npm test` exports npm_config_* (dry-run among them): start clean.
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')))
  })
  assert.equal(r.error, undefined, `npm publish did not run: ${r.error}`)
  return r
}

function hostHasDot (url) {
  return new URL(url).hostname.includes('.')
}

test('npm publish --dry-run on the tarball exits 0 without warnings that matter', () => {
  const r = dryRun(tarball())
  assert.equal(r.status, 0, `npm publish --dry-run exited ${r.status}:\n${r.stderr}`)
  const warnings = r.stderr.split('\n').filter((l) => /\bwarn\b|\bWARN\b|\bERR!/.test(l))
  const findings = warnings.filter((l) => !HARMLESS_WARNINGS.some((re) => re.test(l)))
  assert.deepEqual(findings, [], `npm publish --dry-run warned:\n${r.stderr}`)

  const out = JSON.parse(r.stdout)
  const report = out[PKG.name]
  assert.ok(report, `no report for ${PKG.name} in ${r.stdout}`)
  assert.equal(report.id, `${PKG.name}@${PKG.version}`)
  const files = report.files.map((f) => f.path).sort()
  assert.deepEqual(files, [
    'LICENSE',
    'README.md',
    'dist/plugin_wasm.js',
    'dist/plugin_wasm_bg.wasm',
    'main.js',
    'package.json'
  ])
  const wasm = report.files.find((f) => f.path === 'dist/plugin_wasm_bg.wasm')
  assert.ok(wasm.size > 1000, `the wasm is ${wasm.size} bytes`)
})

test('package.json carries what the plugin index shows', () => {
  assert.equal(PKG.license, 'MIT')
  assert.match(fs.readFileSync(path.join(PLUGIN_DIR, 'LICENSE'), 'utf8'), /^MIT License/)
  // PeerTube's rules: homepage and bugs are plain URL strings whose host has a dot.
  for (const key of ['homepage', 'bugs']) {
    assert.equal(typeof PKG[key], 'string', `${key} must be a string for PeerTube`)
    assert.ok(hostHasDot(PKG[key]), `${key}: ${PKG[key]}`)
  }
  assert.equal(PKG.repository.type, 'git')
  assert.ok(hostHasDot(PKG.repository.url.replace(/^git\+/, '')), `repository: ${PKG.repository.url}`)
  assert.match(PKG.engine.peertube, /^>=\s*\d+\.\d+\.\d+/)
  assert.ok(PKG.name.startsWith('peertube-plugin-'), PKG.name)
  assert.ok(PKG.description.length > 20, PKG.description)
})

test('the README says what the plugin does and how to install it', () => {
  const readme = fs.readFileSync(path.join(PLUGIN_DIR, 'README.md'), 'utf8')
  assert.match(readme, /adds the 18 RECON knowledge\s+domains as video categories/)
  assert.match(readme, /^## Install$/m)
  assert.match(readme, /Plugins\/Themes → Search/)
  assert.match(readme, /peertube-cli plugins install --path/)
  assert.match(readme, /^## Licence$/m)
})
