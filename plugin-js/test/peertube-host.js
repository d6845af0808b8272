'use strict'
// A stand-in for PeerTube's plugin host: validates package.json with PeerTube's
// rules, requires the library, registers it against a category manager that
// behaves like PeerTube's, exercises its router, then unregisters it.
// Library: require('./peertube-host'). CLI: node peertube-host.js <package-dir>
// [--occupy ID=LABEL ...] prints a JSON report.

const path = require('node:path')
const fs = require('node:fs')
const { performance } = require('node:perf_hooks')

// PeerTube's VIDEO_CATEGORIES (server/core/initializers/constants.ts).
const BUILTIN_CATEGORIES = Object.freeze({
  1: 'Music',
  2: 'Films',
  3: 'Vehicles',
  4: 'Art',
  5: 'Sports',
  6: 'Travels',
  7: 'Gaming',
  8: 'People',
  9: 'Comedy',
  10: 'Entertainment',
  11: 'News & Politics',
  12: 'How To',
  13: 'Education',
  14: 'Activism',
  15: 'Science & Technology',
  16: 'Animals',
  17: 'Kids',
  18: 'Food'
})

// CONSTRAINTS_FIELDS.PLUGINS in PeerTube.
const NAME_MAX = 214
const DESCRIPTION_MAX = 20000
const NPM_VALIDATION_RE = /^(@[^._][a-z-_.~0-9]+\/)?([a-z-0-9]+)$/

// ---------------------------------------------------------------- validation

function exists (v) {
  return v !== undefined && v !== null
}

function isSafePath (p) {
  return exists(p) && String(p).split(path.sep).every(part => part !== '..')
}

// validator.isURL with PeerTube's options: http(s), a host, a TLD.
function isUrlValid (value) {
  if (!exists(value)) return false
  let url
  try {
    url = new URL(String(value))
  } catch {
    return false
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false
  const labels = url.hostname.split('.')
  return labels.length >= 2 && /^[a-z\u00a1-\uffff]{2,}$/i.test(labels[labels.length - 1])
}

function isNpmPluginNameValid (value) {
  if (!exists(value) || typeof value !== 'string') return false
  const match = value.match(NPM_VALIDATION_RE)
  return value.length >= 1 && value.length <= NAME_MAX && match !== null &&
    (match[2].startsWith('peertube-plugin-') || match[2].startsWith('peertube-theme-'))
}

function isDescriptionValid (value) {
  return exists(value) && String(value).length >= 1 && String(value).length <= DESCRIPTION_MAX
}

// An empty string passes, as in PeerTube; an object ({url: …}) does not.
function isEmptyOrUrl (value) {
  return exists(value) && (!value || isUrlValid(value))
}

function isSafePathObject (value) {
  if (!exists(value) || typeof value !== 'object') return false
  return Object.keys(value).every(k => isSafePath(value[k]))
}

/**
 * PeerTube's sanitizeAndCheckPackageJSONOrThrow + isPackageJSONValid for a plugin.
 * Returns {result, badFields}; does not modify its argument.
 */
function validatePackageJson (input) {
  const pkg = Object.assign({}, input)
  // PeerTube fills these four before validating.
  if (!pkg.staticDirs) pkg.staticDirs = {}
  if (!pkg.css) pkg.css = []
  if (!pkg.clientScripts) pkg.clientScripts = []
  if (!pkg.translations) pkg.translations = {}

  const badFields = []
  if (!isNpmPluginNameValid(pkg.name)) badFields.push('name')
  if (!isDescriptionValid(pkg.description)) badFields.push('description')
  if (!(exists(pkg.engine) && exists(pkg.engine.peertube))) badFields.push('engine')
  if (!isEmptyOrUrl(pkg.homepage)) badFields.push('homepage')
  if (!exists(pkg.author)) badFields.push('author')
  if (!isEmptyOrUrl(pkg.bugs)) badFields.push('bugs')
  if (!isSafePath(pkg.library)) badFields.push('library')
  if (!isSafePathObject(pkg.staticDirs)) badFields.push('staticDirs')
  if (!(Array.isArray(pkg.css) && pkg.css.every(isSafePath))) badFields.push('css')
  if (!(Array.isArray(pkg.clientScripts) &&
        pkg.clientScripts.every(c => c && isSafePath(c.script) && Array.isArray(c.scopes)))) {
    badFields.push('clientScripts')
  }
  if (!isSafePathObject(pkg.translations)) badFields.push('translations')
  return { result: badFields.length === 0, badFields }
}

function isLibraryCodeValid (library) {
  return !!library && typeof library.register === 'function' && typeof library.unregister === 'function'
}

// ------------------------------------------------------------- host objects

/**
 * PeerTube's VideoConstantManagerFactory for one plugin and one constant type:
 * addConstant refuses an existing key (false, no overwrite), deleteConstant
 * remembers labels it removes that the plugin did not add, resetConstants undoes both.
 */
function createConstantManager (constants, warn) {
  const added = []
  const deleted = []
  const log = []
  return {
    addConstant (key, label) {
      if (constants[key]) {
        warn(`Cannot add category ${key} by plugin: key already exists.`)
        log.push({ op: 'add', key, label, ok: false })
        return false
      }
      added.push({ key, label })
      constants[key] = label
      log.push({ op: 'add', key, label, ok: true })
      return true
    },
    deleteConstant (key) {
      if (!constants[key]) {
        warn(`Cannot delete category by plugin: key ${key} does not exist.`)
        log.push({ op: 'delete', key, ok: false })
        return false
      }
      if (!added.some(a => a.key === key)) deleted.push({ key, label: constants[key] })
      delete constants[key]
      log.push({ op: 'delete', key, ok: true })
      return true
    },
    getConstantValue: key => constants[key],
    getConstants: () => constants,
    resetConstants () {
      for (const a of added) delete constants[a.key]
      for (const d of deleted) constants[d.key] = d.label
      added.length = 0
      deleted.length = 0
    },
    // Host-side view, not part of PeerTube's API.
    _log: log
  }
}

function createLogger () {
  const entries = []
  const at = level => (...args) => entries.push({ level, message: args.map(String).join(' ') })
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, entries }
}

/** An Express-like router that records its routes and can answer a request. */
function createRouter () {
  const routes = []
  const router = {}
  for (const method of ['get', 'post', 'put', 'delete', 'patch', 'use']) {
    router[method] = (routePath, ...handlers) => {
      routes.push({ method: method.toUpperCase(), path: routePath, handlers })
      return router
    }
  }
  async function invoke (method, routePath) {
    const route = routes.find(r => r.method === method && r.path === routePath)
    if (!route) return null
    const res = {
      statusCode: 200,
      headers: {},
      body: undefined,
      status (code) { this.statusCode = code; return this },
      set (k, v) { this.headers[k.toLowerCase()] = v; return this },
      json (b) { this.body = JSON.parse(JSON.stringify(b)); this.headers['content-type'] = 'application/json'; return this },
      send (b) { this.body = b; return this },
      end () { return this }
    }
    const req = { method, path: routePath, query: {}, params: {}, headers: {} }
    for (const handler of route.handlers) {
      let nextCalled = false
      await handler(req, res, () => { nextCalled = true })
      if (!nextCalled) break
    }
    return { status: res.statusCode, headers: res.headers, body: res.body }
  }
  return { router, routes, invoke }
}

function createSettingsManager () {
  const values = {}
  return {
    getSetting: async name => values[name],
    getSettings: async names => Object.fromEntries(names.map(n => [n, values[n]])),
    setSetting: async (name, value) => { values[name] = value },
    onSettingsChange: () => {}
  }
}

function createStorageManager () {
  const values = {}
  return {
    getData: async key => values[key],
    storeData: async (key, value) => { values[key] = value }
  }
}

// ------------------------------------------------------------------ the run

const ourIds = constants => Object.keys(constants).map(Number).filter(id => id >= 100).sort((a, b) => a - b)

function builtinsIntact (constants) {
  return Object.entries(BUILTIN_CATEGORIES).every(([id, label]) => constants[id] === label)
}

/**
 * Loads and registers the plugin in `pluginDir` as PeerTube would, calls its
 * route, unregisters it, and reports what happened. `occupy` pre-fills ids
 * (as another plugin would) to exercise refusals.
 */
async function runHost (pluginDir, { occupy = {} } = {}) {
  const dir = path.resolve(pluginDir)
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  const validation = validatePackageJson(pkg)
  if (!validation.result) {
    throw new Error(`PackageJSON is invalid (invalid fields: ${validation.badFields.map(f => `"${f}"`).join(', ')}).`)
  }

  const libraryPath = path.join(dir, pkg.library)
  const library = require(libraryPath)
  if (!isLibraryCodeValid(library)) {
    throw new Error('Library code is not valid (miss register or unregister function)')
  }

  const constants = Object.assign({}, BUILTIN_CATEGORIES, occupy)
  const { logger, entries: logEntries } = createLogger()
  const hostWarnings = []
  const videoCategoryManager = createConstantManager(constants, m => hostWarnings.push(m))
  const { router, routes, invoke } = createRouter()
  const shortName = pkg.name.replace(/^peertube-plugin-/, '')

  const registerOptions = {
    registerHook: () => {},
    registerSetting: () => {},
    settingsManager: createSettingsManager(),
    storageManager: createStorageManager(),
    videoCategoryManager,
    videoLicenceManager: createConstantManager({}, () => {}),
    videoLanguageManager: createConstantManager({}, () => {}),
    videoPrivacyManager: createConstantManager({}, () => {}),
    playlistPrivacyManager: createConstantManager({}, () => {}),
    getRouter: () => router,
    peertubeHelpers: {
      logger,
      config: { getWebserverUrl: () => 'http://localhost:9000' },
      plugin: {
        getBaseRouterRoute: () => `/plugins/${shortName}/${pkg.version}/router/`,
        getDataDirectoryPath: () => path.join(dir, '..', 'data', pkg.name)
      },
      user: { getAuthUser: async () => undefined }
    }
  }

  const t0 = performance.now()
  try {
    await library.register(registerOptions)
  } catch (err) {
    // PeerTube unregisters a plugin whose registration failed and resets its constants.
    try { await library.unregister() } catch {}
    videoCategoryManager.resetConstants()
    throw new Error(`register() failed: ${err && err.stack ? err.stack : err}`)
  }
  const registerMs = performance.now() - t0

  const registered = videoCategoryManager._log
    .filter(e => e.op === 'add' && e.ok)
    .map(e => ({ id: e.key, label: e.label }))
  const refused = videoCategoryManager._log
    .filter(e => e.op === 'add' && !e.ok)
    .map(e => ({ id: e.key, label: e.label }))
  const builtinsAfterRegister = builtinsIntact(constants)

  const routePath = routes.some(r => r.method === 'GET' && r.path === '/taxonomy') ? '/taxonomy' : '/'
  const response = await invoke('GET', routePath)

  await library.unregister()
  // Checked before PeerTube's own resetConstants so a plugin that forgets its
  // additions is caught, not cleaned up behind its back.
  const afterUnregister = ourIds(constants).filter(id => !(id in occupy))
  const builtinsAfterUnregister = builtinsIntact(constants)
  const occupiedKept = Object.entries(occupy).every(([id, label]) => constants[id] === label)
  videoCategoryManager.resetConstants()

  return {
    package: { name: pkg.name, version: pkg.version, badFields: validation.badFields },
    registered,
    refused,
    route: response && {
      path: `/plugins/${shortName}/router${routePath === '/' ? '/' : routePath}`,
      status: response.status,
      body: response.body
    },
    routes: routes.map(r => `${r.method} ${r.path}`),
    afterUnregister,
    builtinsIntact: builtinsAfterRegister && builtinsAfterUnregister,
    occupiedKept,
    warnings: logEntries.filter(e => e.level === 'warn' || e.level === 'error').map(e => e.message),
    hostWarnings,
    registerMs: Math.round(registerMs * 1000) / 1000
  }
}

function parseArgs (argv) {
  const args = { dir: null, occupy: {} }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--occupy') {
      const spec = argv[++i] || ''
      const eq = spec.indexOf('=')
      const id = Number(spec.slice(0, eq))
      if (eq < 1 || !Number.isInteger(id)) throw new Error(`--occupy wants ID=LABEL, got "${spec}"`)
      args.occupy[id] = spec.slice(eq + 1)
    } else if (args.dir === null) {
      args.dir = a
    } else {
      throw new Error(`unexpected argument "${a}"`)
    }
  }
  if (args.dir === null) throw new Error('usage: node peertube-host.js <package-dir> [--occupy ID=LABEL ...]')
  return args
}

if (require.main === module) {
  let args
  try {
    args = parseArgs(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${err.message}\n`)
    process.exit(2)
  }
  runHost(args.dir, { occupy: args.occupy }).then(
    report => process.stdout.write(JSON.stringify(report, null, 2) + '\n'),
    err => {
      process.stderr.write(`peertube-host: ${err.message}\n`)
      process.exit(1)
    }
  )
}

module.exports = {
  BUILTIN_CATEGORIES,
  validatePackageJson,
  isLibraryCodeValid,
  createConstantManager,
  createRouter,
  runHost
}
