'use strict'
// The plugin's change log: the `action:api.video.updated` hook records people's
// category changes (not the companion's), and the `/changes` route serves them to
// admins and moderators only. main.js is loaded from a copy beside a stand-in
// taxonomy module, so these tests need no wasm build.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { createChangeLog, MAX_CHANGES } = require('../changes')

const PLUGIN_DIR = path.join(__dirname, '..')
const VIDEO = '9c9de5e8-0a1e-484a-b099-e80766180a6d'

function storage () {
  const values = {}
  return { values, getData: async k => values[k], storeData: async (k, v) => { values[k] = JSON.parse(JSON.stringify(v)) } }
}

function settings (initial = {}) {
  const values = { ...initial }
  return { getSetting: async n => values[n] }
}

function logger () {
  const lines = []
  return { lines, info: m => lines.push(m), warn: m => lines.push(m), error: m => lines.push(m) }
}

// What the hook gets from PeerTube: the updated video, the request body and the response (res.locals.oauth.token.User).
function updated (username, category, body = { category }) {
  return { video: { uuid: VIDEO, category }, body, req: {}, res: { locals: { oauth: { token: { User: { username } } } } } }
}

function response () {
  return {
    statusCode: 200,
    body: undefined,
    status (c) { this.statusCode = c; return this },
    json (b) { this.body = JSON.parse(JSON.stringify(b)); return this }
  }
}

const helpers = user => ({ user: { getAuthUser: async () => user } })
const MODERATOR = { username: 'moderator', role: 1 }

test('the hook records a person\'s category change with account and time', async () => {
  const st = storage()
  let t = 0
  const log = createChangeLog({ storageManager: st, settingsManager: settings(), logger: logger(), now: () => new Date(Date.UTC(2026, 11, 2, 5, 0, t++)) })
  await log.onVideoUpdated(updated('moderator', 110))
  await log.onVideoUpdated(updated('moderator', null))
  await log.onVideoUpdated(updated('moderator', '3'))
  // An update without a category (a title edit through the API) says nothing about it.
  await log.onVideoUpdated(updated('moderator', 110, { name: 'new title' }))
  assert.deepEqual(await log.load(), [
    { video: VIDEO, category: 110, user: 'moderator', at: '2026-12-02T05:00:00.000Z' },
    { video: VIDEO, category: null, user: 'moderator', at: '2026-12-02T05:00:01.000Z' },
    { video: VIDEO, category: 3, user: 'moderator', at: '2026-12-02T05:00:02.000Z' }
  ])
})

test('the companion\'s own account is not recorded when the setting names it', async () => {
  const log = createChangeLog({ storageManager: storage(), settingsManager: settings({ 'companion-username': 'root' }), logger: logger() })
  await log.onVideoUpdated(updated('root', 105))
  await log.onVideoUpdated(updated('moderator', 106))
  const changes = await log.load()
  assert.equal(changes.length, 1)
  assert.equal(changes[0].user, 'moderator')
})

test('concurrent updates are all recorded, and the log is bounded', async () => {
  const st = storage()
  st.values['category-changes'] = Array.from({ length: MAX_CHANGES }, (_, i) => ({ video: VIDEO, category: 1, user: 'old', at: String(i) }))
  const log = createChangeLog({ storageManager: st, settingsManager: settings(), logger: logger() })
  await Promise.all([101, 102, 103].map(c => log.onVideoUpdated(updated('moderator', c))))
  const changes = await log.load()
  assert.equal(changes.length, MAX_CHANGES)
  assert.deepEqual(changes.slice(-3).map(c => c.category).sort(), [101, 102, 103])
  assert.equal(changes[0].at, '3', 'the oldest entries went')
})

test('the route answers admins and moderators only, without the excluded account', async () => {
  const log = createChangeLog({ storageManager: storage(), settingsManager: settings(), logger: logger() })
  let t = 0
  const at = () => new Date(Date.UTC(2026, 11, 2, 5, 0, t++))
  const timed = createChangeLog({ storageManager: storage(), settingsManager: settings(), logger: logger(), now: at })
  for (const l of [log, timed]) {
    await l.onVideoUpdated(updated('root', 105))
    await l.onVideoUpdated(updated('moderator', 106))
  }
  let res = response()
  await log.handleChanges({ query: {} }, res, helpers(null))
  assert.equal(res.statusCode, 401)
  res = response()
  await log.handleChanges({ query: {} }, res, helpers({ username: 'viewer', role: 2 }))
  assert.equal(res.statusCode, 403)
  res = response()
  await log.handleChanges({ query: { exclude: 'root' } }, res, helpers(MODERATOR))
  assert.equal(res.statusCode, 200)
  assert.deepEqual(res.body.changes.map(c => [c.user, c.category]), [['moderator', 106]])
  res = response()
  await timed.handleChanges({ query: { since: '2026-12-02T05:00:00.000Z' } }, res, helpers({ username: 'root', role: 0 }))
  assert.deepEqual(res.body.changes.map(c => c.user), ['moderator'], 'only changes after `since`')
})

test('main.js registers the hook, the setting and the authenticated route', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'recon-plugin-changes-'))
  try {
    for (const f of ['main.js', 'changes.js']) fs.copyFileSync(path.join(PLUGIN_DIR, f), path.join(dir, f))
    fs.mkdirSync(path.join(dir, 'dist'))
    fs.writeFileSync(path.join(dir, 'dist', 'plugin_wasm.js'),
      "module.exports = { version: () => 'test', fingerprint: () => 'f', categories: () => [{ id: 100, label: 'Agriculture & Livestock' }] }\n")
    const plugin = require(path.join(dir, 'main.js'))
    const hooks = []
    const settingsSeen = []
    const routes = {}
    const router = { get: (p, h) => { routes[p] = h } }
    const st = storage()
    let authUser = null
    await plugin.register({
      videoCategoryManager: { addConstant: () => true, deleteConstant: () => true },
      getRouter: () => router,
      peertubeHelpers: { logger: logger(), user: { getAuthUser: async () => authUser } },
      registerHook: h => hooks.push(h),
      registerSetting: s => settingsSeen.push(s.name),
      storageManager: st,
      settingsManager: settings()
    })
    assert.deepEqual(hooks.map(h => h.target), ['action:api.video.updated'])
    assert.deepEqual(settingsSeen, ['companion-username'])
    assert.ok(routes['/changes'], 'the /changes route')
    await hooks[0].handler(updated('moderator', 4))
    let res = response()
    await routes['/changes']({ query: {} }, res)
    assert.equal(res.statusCode, 401, 'no token, no log')
    authUser = MODERATOR
    res = response()
    await routes['/changes']({ query: {} }, res)
    assert.deepEqual(res.body.changes.map(c => c.category), [4])
    await plugin.unregister()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
