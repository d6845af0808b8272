'use strict'
// PeerTube server plugin: registers the RECON knowledge domains as video
// categories. The table comes from the bundled WebAssembly build of the
// `shared-constants` crate, the same one the recon-companion links natively.

const TAXONOMY_MODULE = './dist/plugin_wasm.js'
const ROUTE_PATHS = ['/taxonomy', '/']

// What this instance added, so unregister removes exactly that and never a
// category another plugin or PeerTube itself owns.
let registered = null

function loadTaxonomy () {
  // Loaded inside register so a missing or broken .wasm fails the registration
  // (PeerTube then logs it and unregisters) instead of crashing the require.
  const taxonomy = require(TAXONOMY_MODULE)
  const categories = taxonomy.categories()
  if (!Array.isArray(categories) || categories.length === 0) {
    throw new Error(`${TAXONOMY_MODULE} returned no categories`)
  }
  return {
    version: taxonomy.version(),
    fingerprint: taxonomy.fingerprint(),
    categories: categories.map(({ id, label }) => ({ id, label }))
  }
}

function pickLogger (peertubeHelpers) {
  const logger = peertubeHelpers && peertubeHelpers.logger
  return logger && typeof logger.warn === 'function' ? logger : console
}

async function register ({ videoCategoryManager, getRouter, peertubeHelpers, registerHook, registerSetting, storageManager, settingsManager }) {
  const logger = pickLogger(peertubeHelpers)
  const taxonomy = loadTaxonomy()

  const added = []
  const refused = []
  for (const { id, label } of taxonomy.categories) {
    if (videoCategoryManager.addConstant(id, label)) {
      added.push(id)
    } else {
      refused.push(id)
      const current = typeof videoCategoryManager.getConstantValue === 'function'
        ? videoCategoryManager.getConstantValue(id)
        : undefined
      logger.warn(
        `recon-domains: PeerTube refused category ${id} "${label}"` +
        (current !== undefined ? ` (id already holds "${current}")` : '') +
        '; videos with this category will not show the RECON label'
      )
    }
  }
  registered = { manager: videoCategoryManager, added, logger }

  const body = {
    version: taxonomy.version,
    fingerprint: taxonomy.fingerprint,
    categories: taxonomy.categories,
    refused
  }
  // People's category changes, for the companion to adopt (needs the storage).
  const { createChangeLog, COMPANION_SETTING } = require('./changes')
  const changes = storageManager ? createChangeLog({ storageManager, settingsManager, logger }) : null
  if (changes && typeof registerSetting === 'function') {
    registerSetting({
      name: COMPANION_SETTING,
      label: 'Account the recon-companion pushes with (its changes are not recorded)',
      type: 'input',
      default: '',
      private: true
    })
  }
  if (changes && typeof registerHook === 'function') {
    registerHook({ target: 'action:api.video.updated', handler: params => changes.onVideoUpdated(params) })
  }
  if (typeof getRouter === 'function') {
    const router = getRouter()
    for (const path of ROUTE_PATHS) {
      router.get(path, (req, res) => res.json(body))
    }
    if (changes) {
      router.get('/changes', (req, res) => changes.handleChanges(req, res, peertubeHelpers))
    }
  }

  logger.info(
    `recon-domains: registered ${added.length} of ${taxonomy.categories.length} categories ` +
    `(taxonomy ${taxonomy.version}, fingerprint ${taxonomy.fingerprint})`
  )
}

async function unregister () {
  if (!registered) return
  const { manager, added, logger } = registered
  registered = null
  for (const id of added) {
    if (!manager.deleteConstant(id)) {
      logger.warn(`recon-domains: category ${id} was already gone at unregister`)
    }
  }
}

module.exports = { register, unregister }
