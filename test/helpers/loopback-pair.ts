import {execFileSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

/** The data directory the loopback pairs use (the product's own path, under each node's root). */
export const loopbackDataDir = '/var/opt/sun/xvm'

export type PairNode = 'primary' | 'secondary'

/** A port on 127.0.0.1 nothing listens on: bound, then closed. */
export function closedPort(): number {
  const out = execFileSync(process.execPath, ['-e', 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'], {encoding: 'utf8'})
  return Number(out.trim())
}

/**
 * `<work>/ha.yaml` for two nodes reached over ssh on 127.0.0.1 (each its own sshd port, or a
 * closed one for a node that does not answer), each with its own root; storage: a tmpfs mount,
 * with `device` when given. Short timeouts: an unreachable node is a closed port, refused at once.
 */
export function writeLoopbackConfig(work: string, nodes: Record<PairNode, {key: string; port: number; root: string}>, device?: string): string {
  const node = (n: PairNode) => `
  ${n}:
    hostname: ctl-${n}
    root: ${nodes[n].root}
    ssh:
      host: 127.0.0.1
      port: ${nodes[n].port}
      user: root
      identity_file: ${nodes[n].key}
      known_hosts: ${join(work, 'known_hosts')}
      connect_timeout: 3s
      command_timeout: 20s`
  const path = join(work, 'ha.yaml')
  writeFileSync(path, `data_dir: ${loopbackDataDir}\nnodes:${node('primary')}${node('secondary')}\nstorage:\n  kind: mount\n  fstype: tmpfs\n${device ? `  device: ${device}\n` : ''}`)
  return path
}
