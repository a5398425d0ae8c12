// Starts a PLC directory (in memory) and a PDS on 127.0.0.1, for tests.
const path = require('node:path')
const fs = require('node:fs')
const crypto = require('node:crypto')
const { PlcServer, MockDatabase } = require('@did-plc/server')
const pds = require('@atproto/pds')

async function main() {
  const dir = process.argv[2]
  const port = Number(process.argv[3])
  const plcPort = Number(process.argv[4])
  fs.mkdirSync(dir, { recursive: true })
  const plc = PlcServer.create({ db: new MockDatabase(), port: plcPort })
  await plc.start()
  const hex = crypto.randomBytes(32).toString('hex')
  const env = {
    port,
    hostname: 'localhost',
    devMode: true,
    inviteRequired: false,
    dataDirectory: dir,
    blobstoreDiskLocation: path.join(dir, 'blobs'),
    didPlcUrl: `http://127.0.0.1:${plcPort}`,
    serviceHandleDomains: ['.test'],
    jwtSecret: crypto.randomBytes(16).toString('hex'),
    adminPassword: 'admin-pass',
    plcRotationKeyK256PrivateKeyHex: hex,
    rateLimitsEnabled: false,
    disableSsrfProtection: true,
    crawlers: [],
  }
  const cfg = pds.envToCfg(env)
  const secrets = pds.envToSecrets(env)
  const server = await pds.PDS.create(cfg, secrets)
  await server.start()
  console.log(JSON.stringify({ ready: true, port, plcPort }))
  const stop = async () => { await server.destroy(); await plc.destroy(); process.exit(0) }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}
main().catch((err) => { console.error(err); process.exit(1) })
