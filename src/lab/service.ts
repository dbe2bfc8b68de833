import {readFile} from 'node:fs/promises'
import {createServer} from 'node:http'
import {hostname} from 'node:os'
import {join} from 'node:path'
import {parseArgs} from 'node:util'

/**
 * The lab controller's "product": answers on the service IP with the node's hostname and a file
 * from the data directory, read on every request. A client therefore sees at once which node
 * serves and whether that node really has the shared storage — the two things a failover moves.
 * Started by the lab's boot inside the node's namespaces; never run by hand.
 */
const {values} = parseArgs({
  options: {'data-dir': {type: 'string'}, listen: {type: 'string'}, port: {type: 'string'}},
})
const dataDir = values['data-dir']
const listen = values.listen
const port = Number(values.port)
if (!dataDir || !listen || !Number.isInteger(port)) {
  process.stderr.write('usage: service --data-dir DIR --listen ADDRESS --port PORT\n')
  process.exit(2)
}

const server = createServer(async (_request, response) => {
  const file = join(dataDir, 'service/greeting.txt')
  try {
    const greeting = (await readFile(file, 'utf8')).trim()
    response.writeHead(200, {'content-type': 'application/json'})
    response.end(`${JSON.stringify({greeting, hostname: hostname()})}\n`)
  } catch (error) {
    response.writeHead(503, {'content-type': 'application/json'})
    response.end(`${JSON.stringify({error: `cannot read ${file}: ${(error as Error).message}`, hostname: hostname()})}\n`)
  }
})
server.listen(port, listen, () => {
  process.stdout.write(`${new Date().toISOString()} service of ${hostname()} listening on ${listen}:${port}\n`)
})
server.on('error', (error) => {
  process.stderr.write(`service: ${error.message}\n`)
  process.exit(1)
})
// A reboot is abrupt for the service too: no draining of connections.
process.on('SIGTERM', () => process.exit(0))
