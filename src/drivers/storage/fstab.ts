/**
 * /etc/fstab, edited as text, everything else kept: the boot configuration of storage that is a
 * filesystem mounted at data_dir (kind mount; an LVM volume would use it too). A node whose fstab
 * still mounts the shared storage mounts it again at its next boot, while the other node holds it.
 * It belongs to the storage drivers, not to boot-config/ (the network's boot configuration): it
 * moves with the storage kind (zfs imports its pool from its own cache, not from fstab).
 */
export const fstabPath = '/etc/fstab'

/** fstab lines mounting something at `mountpoint`. */
function fstabEntries(text: string, mountpoint: string): number[] {
  return text
    .split('\n')
    .map((line, i) => ({i, words: line.replace(/#.*/, '').trim().split(/\s+/)}))
    .filter(({words}) => words.length >= 2 && words[1].replace(/\/+$/, '') === mountpoint.replace(/\/+$/, ''))
    .map(({i}) => i)
}

export function fstabMounts(text: string, mountpoint: string): boolean {
  return fstabEntries(text, mountpoint).length > 0
}

export function fstabWithout(text: string, mountpoint: string): string {
  const drop = new Set(fstabEntries(text, mountpoint))
  return text
    .split('\n')
    .filter((_, i) => !drop.has(i))
    .join('\n')
}

export function fstabWith(text: string, device: string, mountpoint: string, fstype: string): string {
  if (fstabMounts(text, mountpoint)) return text
  const base = text === '' || text.endsWith('\n') ? text : `${text}\n`
  return `${base}${device} ${mountpoint} ${fstype} defaults 0 0\n`
}
