import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {HaError} from '../core/errors.js'
import {run} from './exec.js'
import {labCurrentPath, labNetns, labNodes, labPaths} from './layout.js'
import {killAll, labProcesses, mountPoints, netnsExists, netnsPids} from './node.js'

export interface LabDownResult {
  lab_dir: string
  loop_devices: string[]
  mounts: string[]
  namespaces: string[]
  processes: number
}

/** Loop devices backed by `image` (also when the image was deleted under them). */
export async function loopDevicesOf(image: string): Promise<string[]> {
  const {stdout} = await run(['losetup', '--list', '--noheadings', '--output', 'NAME,BACK-FILE'])
  return stdout
    .split('\n')
    .map((line) => line.trim().match(/^(\S+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null && m[2].replace(/ \(deleted\)$/, '') === image)
    .map((m) => m[1])
}

/**
 * Removes every trace of a lab, running or crashed: processes in its namespaces, mounts under
 * its directory, its loop device, the namespaces (and with them the bridge and veths). Each step
 * is attempted even when an earlier one failed; what is left at the end is an error.
 */
export async function teardown(labDir: string): Promise<LabDownResult> {
  const dirs = [labDir]
  const recorded = (await readFile(labCurrentPath(), 'utf8').catch(() => '')).trim()
  if (recorded && recorded !== labDir && recorded.startsWith('/')) dirs.push(recorded)
  const problems: string[] = []
  const attempt = async (what: string, work: () => Promise<void>) => {
    try {
      await work()
    } catch (error) {
      problems.push(`${what}: ${(error as Error).message}`)
    }
  }

  const result: LabDownResult = {lab_dir: labDir, loop_devices: [], mounts: [], namespaces: [], processes: 0}
  const namespaces = Object.values(labNetns)
  await attempt('stopping processes', async () => {
    const pids: number[] = []
    for (const netns of namespaces) pids.push(...(await netnsPids(netns)))
    for (const dir of dirs) pids.push(...(await labProcesses(dir)))

    // Crash-only: a node is powered off, not shut down (and unshare ignores SIGTERM anyway).
    result.processes = await killAll(pids, 0)
  })
  for (const dir of dirs) {
    await attempt(`unmounting under ${dir}`, async () => {
      const mounts = (await mountPoints()).filter((m) => m.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length)
      for (const mount of mounts) {
        await run(['umount', mount], {timeoutMs: 20_000}).catch(async () => run(['umount', '-l', mount]))
        result.mounts.push(mount)
      }
    })
    for (const image of [labPaths(dir).image, join(dir, 'decoy.img'), ...labNodes.map((node) => join(dir, node, 'disk.img'))]) {
      await attempt(`detaching loop devices of ${image}`, async () => {
        for (const device of await loopDevicesOf(image)) {
          await run(['losetup', '-d', device])
          result.loop_devices.push(device)
        }
      })
    }
  }

  await attempt('deleting namespaces', async () => {
    for (const netns of namespaces) {
      if (!(await netnsExists(netns))) continue
      await run(['ip', 'netns', 'del', netns])
      result.namespaces.push(netns)
    }
  })
  if (problems.length > 0) {
    throw new HaError(`lab: could not remove everything:\n  ${problems.join('\n  ')}`, {
      actions: ['look at the named processes, mounts or devices and remove them, then run ha lab down again'],
      details: {problems},
    })
  }

  return result
}
