import {bareAddress, type BootConfigDriver, BootConfigRefusal, type BootFile, type ServiceIp} from './driver.js'

/**
 * What the steps do with a driver, over every file of its directory: which files bring an
 * address up, and the edits that take it out or put it in. Pure: the files come read, the new
 * texts go back to be written by the runner.
 */

/**
 * May this file bring `address` up at boot (on any interface)? A line the driver cannot read that
 * mentions the address counts, unless `surely`: then only an address it reads does.
 */
export function fileHolds(driver: BootConfigDriver, file: BootFile, address: string, surely = false): boolean {
  return driver.addresses(file).some((a) => bareAddress(a.address) === bareAddress(address) && !(surely && a.unread))
}

/** May any of these files bring `address` up at boot (surely: does one)? */
export function filesHold(driver: BootConfigDriver, files: BootFile[], address: string, surely = false): boolean {
  return files.some((f) => fileHolds(driver, f, address, surely))
}

/** The new text of every file that configures `address`, without it (refused: nothing to write). */
export function removals(driver: BootConfigDriver, files: BootFile[], address: string): BootFile[] {
  const edited: BootFile[] = []
  for (const file of files) {
    if (!fileHolds(driver, file, address)) continue
    const text = driver.withoutAddress(file, address)
    if (fileHolds(driver, {path: file.path, text}, address)) throw unsure(file.path, `still brings ${address} up after ha's edit`)
    if (text !== file.text) edited.push({path: file.path, text})
  }

  return edited
}

/** The new text of the file that gets `ip`, or undefined when a file brings it up already. */
export function addition(driver: BootConfigDriver, files: BootFile[], ip: ServiceIp): BootFile | undefined {
  if (filesHold(driver, files, ip.address, true)) return undefined
  const file = driver.fileFor(files, ip)
  const text = driver.withAddress(file, ip)
  if (!fileHolds(driver, {path: file.path, text}, ip.address, true)) throw unsure(file.path, `would not bring ${ip.address} up after ha's edit`)
  return text === file.text ? undefined : {path: file.path, text}
}

/** The driver's own reading of its edit disagrees with the edit: a form it does not handle. */
function unsure(path: string, what: string): BootConfigRefusal {
  return new BootConfigRefusal(path, `${what} (a form of the file ha does not edit safely)`, ['make the edit by hand, as the runbook says (ha failover --plan), then run ha again'])
}

/**
 * Every edit for these service IPs, one after the other on the files as they would become: a dry
 * run, so that a file the driver refuses stops the step before its first change. Returns the
 * files as they would be in the end.
 */
export function dryRun(driver: BootConfigDriver, files: BootFile[], ips: ServiceIp[], op: 'add' | 'remove'): BootFile[] {
  let now = files
  const put = (edited: BootFile) => {
    now = now.some((f) => f.path === edited.path) ? now.map((f) => (f.path === edited.path ? edited : f)) : [...now, edited]
  }

  for (const ip of ips) {
    if (op === 'remove') for (const edited of removals(driver, now, ip.address)) put(edited)
    else {
      const edited = addition(driver, now, ip)
      if (edited) put(edited)
    }
  }

  return now
}
