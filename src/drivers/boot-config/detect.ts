import type {BootConfigDriver, BootConfigKind, BootFile} from './driver.js'

/**
 * Which system configures a node's interfaces at boot, from the files of every system as listed
 * there (what ha init proposes and ha check compares with the config): the systems whose files
 * configure one of the service interfaces, or, with none named, any interface but loopback. The
 * order is the one to propose when several do: netplan renders for NetworkManager or networkd,
 * NetworkManager reads ifcfg files too (RHEL 8), and ifupdown's file lingers on many hosts.
 */
const preference: BootConfigKind[] = ['netplan', 'networkmanager', 'ifcfg', 'ifupdown']

export interface BootConfigFound {
  kind: BootConfigKind
  /** The files that configure the interfaces (host paths). */
  files: string[]
}

function configures(driver: BootConfigDriver, files: BootFile[], ifaces: string[]): string[] {
  if (driver.name === 'ifupdown') {
    const stanza = (iface: string) => new RegExp(`^\\s*iface\\s+${iface.replaceAll('.', '\\.')}(:\\S+)?\\s`, 'm')
    return files.filter((f) => (ifaces.length > 0 ? ifaces.some((i) => stanza(i).test(f.text)) : /^\s*iface\s+(?!lo\s)\S+\s+inet\s/m.test(f.text))).map((f) => f.path)
  }

  if (ifaces.length === 0) return files.filter((f) => driver.addresses(f).some((a) => a.interface !== 'lo' && !a.address.startsWith('127.'))).map((f) => f.path)
  const found = new Set<string>()
  for (const iface of ifaces) {
    try {
      found.add(driver.fileFor(files, {address: '0.0.0.0/32', interface: iface}).path)
    } catch {
      // Not configured by this system (or not in one file): no evidence for it.
    }
  }

  return [...found]
}

/** Every system with files that configure the interfaces, in the order ha proposes them. */
export function detectBootConfig(drivers: Record<BootConfigKind, BootConfigDriver>, files: Record<BootConfigKind, BootFile[]>, ifaces: string[]): BootConfigFound[] {
  return preference.map((kind) => ({files: configures(drivers[kind], files[kind], ifaces), kind})).filter((f) => f.files.length > 0)
}
