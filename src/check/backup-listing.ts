/**
 * How a node sends its backup archives to `ha check` in the one batched exec: the script it
 * runs and the reading of what it printed. backup_age (checks/backup-age.ts) judges them.
 */
/** What a node sends at most of its archives' bytes. */
export const transferBudgetBytes = 64 * 1024 * 1024

// Names newest first (ids start with the UTC time), each as "base64(name) kind size" and, for a
// regular file within the budget, exactly `size` bytes of it. A symlink or anything but a
// regular file is named, never read; `timeout` keeps a file swapped for a FIFO from blocking.
export const listBackupsScript = [
  'd=$1 left=$2',
  'if [ -L "$d" ] || [ ! -d "$d" ]; then echo "ha: no backup directory $d (or it is a symlink)" >&2; exit 3; fi',
  't=$(mktemp) || exit 125',
  "trap 'rm -f \"$t\"' EXIT",
  'set --',
  'for f in "$d"/[!.]*.tar.gz; do { [ -e "$f" ] || [ -L "$f" ]; } && set -- "$f" "$@"; done',
  'for f in "$@"; do',
  '  n=$(printf %s "${f##*/}" | base64 -w0)',
  '  if [ -L "$f" ]; then echo "$n symlink 0"; continue; fi',
  '  if [ ! -f "$f" ]; then echo "$n other 0"; continue; fi',
  '  s=$(stat -c %s -- "$f") || { echo "$n unreadable 0"; continue; }',
  '  if [ "$s" -gt "$left" ]; then echo "$n over_budget $s"; continue; fi',
  '  timeout 30 head -c "$s" -- "$f" >"$t" 2>/dev/null || { echo "$n unreadable 0"; continue; }',
  '  g=$(stat -c %s -- "$t"); left=$((left - g))',
  '  echo "$n file $g"; cat -- "$t"',
  'done',
].join('\n')

export function backupsProbeArgv(dir: string): string[] {
  return ['sh', '-c', listBackupsScript, 'ha-backups', dir, String(transferBudgetBytes)]
}

export interface ArchiveSent {
  name: string
  /** file: its bytes follow; otherwise why it was not sent. */
  kind: 'file' | 'other' | 'over_budget' | 'symlink' | 'unreadable'
  size: number
  bytes?: Buffer
}

/** Frames of listBackupsScript; a frame that does not parse ends the listing with an error. */
export function parseBackupListing(output: Buffer): {archives: ArchiveSent[]; error?: string} {
  const archives: ArchiveSent[] = []
  let pos = 0
  while (pos < output.length) {
    const end = output.indexOf(0x0a, pos)
    if (end === -1) return {archives, error: 'the listing ended mid-line'}
    const [name64, kind, sizeText] = output.subarray(pos, end).toString('latin1').split(' ')
    const size = Number(sizeText)
    if (!name64 || !['file', 'other', 'over_budget', 'symlink', 'unreadable'].includes(kind) || !Number.isSafeInteger(size) || size < 0) {
      return {archives, error: 'the listing is malformed'}
    }

    pos = end + 1
    const item: ArchiveSent = {kind: kind as ArchiveSent['kind'], name: Buffer.from(name64, 'base64').toString('utf8'), size}
    if (kind === 'file') {
      if (pos + size > output.length) return {archives, error: `the listing was cut inside ${item.name}`}
      item.bytes = output.subarray(pos, pos + size)
      pos += size
    }

    archives.push(item)
  }

  return {archives}
}

