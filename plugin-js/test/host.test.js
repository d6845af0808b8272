'use strict'
// Tests of the PeerTube stand-in itself: it must reject what PeerTube rejects,
// or the plugin tests prove nothing.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { validatePackageJson, createConstantManager, runHost, BUILTIN_CATEGORIES } = require('./peertube-host')

const VALID = {
  name: 'peertube-plugin-x',
  description: 'x',
  engine: { peertube: '>=6.0.0' },
  author: 'a',
  homepage: 'https://example.org/x',
  bugs: 'https://example.org/x/issues',
  library: './main.js',
  staticDirs: {},
  css: [],
  clientScripts: [],
  translations: {}
}

function bad (patch) {
  const pkg = Object.assign({}, VALID, patch)
  for (const k of Object.keys(patch)) if (patch[k] === undefined) delete pkg[k]
  return validatePackageJson(pkg).badFields
}

test('validator accepts a complete package.json, and empty homepage/bugs', () => {
  assert.deepEqual(validatePackageJson(VALID), { result: true, badFields: [] })
  assert.deepEqual(bad({ homepage: '', bugs: '' }), [])
  // PeerTube fills these four in when absent.
  assert.deepEqual(bad({ staticDirs: undefined, css: undefined, clientScripts: undefined, translations: undefined }), [])
})

test('validator rejects what PeerTube rejects', () => {
  assert.deepEqual(bad({ engine: undefined, engines: { peertube: '>=6' } }), ['engine'])
  assert.deepEqual(bad({ engine: {} }), ['engine'])
  assert.deepEqual(bad({ homepage: undefined }), ['homepage'])
  assert.deepEqual(bad({ bugs: { url: 'https://example.org/i' } }), ['bugs'])
  assert.deepEqual(bad({ homepage: 'not a url' }), ['homepage'])
  assert.deepEqual(bad({ name: 'recon-domains' }), ['name'])
  assert.deepEqual(bad({ name: 'peertube-plugin-Upper' }), ['name'])
  assert.deepEqual(bad({ description: undefined }), ['description'])
  assert.deepEqual(bad({ author: undefined }), ['author'])
  assert.deepEqual(bad({ library: '../main.js' }), ['library'])
  assert.deepEqual(bad({ clientScripts: [{ script: 'a.js' }] }), ['clientScripts'])
  assert.deepEqual(bad({ staticDirs: { a: '../x' } }), ['staticDirs'])
})

test('category manager refuses present ids and reset restores deletions', () => {
  const constants = Object.assign({}, BUILTIN_CATEGORIES)
  const warnings = []
  const m = createConstantManager(constants, w => warnings.push(w))
  assert.equal(m.addConstant(1, 'Mine'), false)
  assert.equal(constants[1], 'Music')
  assert.equal(warnings.length, 1)
  assert.equal(m.addConstant(100, 'A'), true)
  assert.equal(m.addConstant(100, 'B'), false)
  assert.equal(m.getConstantValue(100), 'A')
  assert.equal(m.deleteConstant(2), true)
  assert.equal(m.deleteConstant(2), false)
  m.resetConstants()
  assert.equal(constants[100], undefined)
  assert.deepEqual(constants, Object.assign({}, BUILTIN_CATEGORIES))
})

function tempPlugin (mainJs) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recon-host-test-'))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(VALID))
  fs.writeFileSync(path.join(dir, 'main.js'), mainJs)
  return dir
}

test('a library without unregister is rejected', async () => {
  const dir = tempPlugin('module.exports = { register: async () => {} }')
  try {
    await assert.rejects(runHost(dir), /miss register or unregister/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a plugin that forgets its additions is caught by afterUnregister', async () => {
  const dir = tempPlugin(`
    module.exports = {
      register: async ({ videoCategoryManager }) => { videoCategoryManager.addConstant(150, 'Leak') },
      unregister: async () => {}
    }`)
  try {
    const r = await runHost(dir)
    assert.deepEqual(r.afterUnregister, [150])
    assert.equal(r.route, null)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('a plugin that deletes a built-in is caught by builtinsIntact', async () => {
  const dir = tempPlugin(`
    module.exports = {
      register: async ({ videoCategoryManager }) => { videoCategoryManager.deleteConstant(3) },
      unregister: async () => {}
    }`)
  try {
    const r = await runHost(dir)
    assert.equal(r.builtinsIntact, false)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('CLI prints a JSON report and fails on an invalid package', () => {
  const dir = tempPlugin('module.exports = { register: async () => {}, unregister: async () => {} }')
  try {
    const host = path.join(__dirname, 'peertube-host.js')
    const ok = spawnSync(process.execPath, [host, dir], { encoding: 'utf8' })
    assert.equal(ok.status, 0, ok.stderr)
    const report = JSON.parse(ok.stdout)
    assert.deepEqual(report.registered, [])
    assert.equal(report.builtinsIntact, true)
    assert.equal(typeof report.registerMs, 'number')

    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(Object.assign({}, VALID, { engine: undefined })))
    const ko = spawnSync(process.execPath, [host, dir], { encoding: 'utf8' })
    assert.equal(ko.status, 1)
    assert.match(ko.stderr, /invalid fields: "engine"/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
