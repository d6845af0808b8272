'use strict'
// The log of category changes people make in PeerTube: the server hook
// `action:api.video.updated` records who set which category on which video and
// when (in the plugin's storage), and an authenticated route serves the log to
// the recon-companion, which adopts those changes instead of overwriting them.
// Changes made by the companion's own account are left out.

const STORE_KEY = 'category-changes'
// Oldest entries are dropped past this many (the companion reads them within minutes).
const MAX_CHANGES = 20000
const COMPANION_SETTING = 'companion-username'
// PeerTube's UserRole: ADMINISTRATOR = 0, MODERATOR = 1.
const ALLOWED_ROLES = [0, 1]

function accountOf (res) {
  const user = res && res.locals && res.locals.oauth && res.locals.oauth.token && res.locals.oauth.token.User
  return user && typeof user.username === 'string' ? user.username : null
}

function categoryOf (video) {
  const c = video && video.category
  if (c === undefined || c === null || c === '') return null
  const n = Number(c)
  return Number.isInteger(n) ? n : null
}

function createChangeLog ({ storageManager, settingsManager, logger, now = () => new Date() }) {
  // Writes are serialized: two updates at once must not lose one.
  let queue = Promise.resolve()

  async function load () {
    const v = await storageManager.getData(STORE_KEY)
    return Array.isArray(v) ? v : []
  }

  async function companionAccount () {
    if (!settingsManager || typeof settingsManager.getSetting !== 'function') return null
    const v = await settingsManager.getSetting(COMPANION_SETTING)
    return typeof v === 'string' && v.trim() !== '' ? v.trim() : null
  }

  function record (change) {
    queue = queue.then(async () => {
      const list = await load()
      list.push(change)
      if (list.length > MAX_CHANGES) list.splice(0, list.length - MAX_CHANGES)
      await storageManager.storeData(STORE_KEY, list)
    }).catch(err => logger.error(`recon-domains: could not record a category change: ${err}`))
    return queue
  }

  // action:api.video.updated — params { video, body, req, res }.
  async function onVideoUpdated ({ video, body, res }) {
    if (!video || !body || !Object.prototype.hasOwnProperty.call(body, 'category')) return
    const user = accountOf(res)
    const companion = await companionAccount()
    if (companion && user === companion) return
    await record({ video: video.uuid, category: categoryOf(video), user, at: now().toISOString() })
  }

  // GET /changes?since=ISO&exclude=USERNAME — admins and moderators only.
  async function handleChanges (req, res, peertubeHelpers) {
    let user = null
    try {
      user = await peertubeHelpers.user.getAuthUser(res)
    } catch {
      user = null
    }
    if (!user) return res.status(401).json({ error: 'Authentication required' })
    if (!ALLOWED_ROLES.includes(user.role)) return res.status(403).json({ error: 'Admins and moderators only' })
    const query = (req && req.query) || {}
    const since = typeof query.since === 'string' ? query.since : null
    const excluded = [await companionAccount(), typeof query.exclude === 'string' ? query.exclude : null].filter(Boolean)
    const changes = (await load()).filter(c => !excluded.includes(c.user) && (!since || c.at > since))
    return res.json({ changes })
  }

  return { onVideoUpdated, handleChanges, load, settled: () => queue }
}

module.exports = { createChangeLog, STORE_KEY, MAX_CHANGES, COMPANION_SETTING }
