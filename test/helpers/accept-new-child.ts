// One `ha` process adding one host under accept-new, for the concurrency test: it waits until
// the shared start time, connects, and prints "connect" or the error kind.
import {connectSsh} from '../../src/hosts/ssh-connect.js'

const [port, knownHosts, identity, startAt] = process.argv.slice(2)
const delay = Number(startAt) - Date.now()
if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
try {
  const host = await connectSsh('peer', '/', {
    client: 'ssh2',
    command_timeout: 20,
    connect_timeout: 20,
    host: '127.0.0.1',
    host_key_policy: 'accept-new',
    identity_file: identity,
    keepalive_interval: 5,
    known_hosts: knownHosts,
    port: Number(port),
    user: 'root',
  })
  await host.close()
  process.stdout.write('connect\n')
} catch (error) {
  process.stdout.write(`${(error as {kind?: string}).kind ?? 'error'}: ${(error as Error).message}\n`)
  process.exitCode = 1
}
