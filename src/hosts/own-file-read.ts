/**
 * Reads one of ha's own small files on a host (the epoch, a lock) in one exec, bounded, never
 * through a symlink: the file and each folder named with it (ha's own `.ha`) must not be one.
 * The counterpart of own-file-write.ts. First line of the answer: what was found (absent, file,
 * symlink PATH, other KIND); for a file, at most maxBytes + 1 of its bytes follow, so a file too
 * large is seen as such. `timeout` keeps a file swapped for a FIFO from blocking.
 */
const script = [
  'max=$1; f=$2; shift 2',
  'for p in "$@" "$f"; do if [ -L "$p" ]; then printf \'symlink %s\\n\' "$p"; exit 0; fi; done',
  'if [ ! -e "$f" ]; then echo absent; exit 0; fi',
  'if [ ! -f "$f" ]; then printf \'other %s\\n\' "$(stat -c %F -- "$f")"; exit 0; fi',
  'echo file',
  'exec timeout 10 head -c "$((max + 1))" -- "$f"',
].join('\n')

/** The argv reading `file` (a path on the host, under its root), refusing it when it or any of `guarded` is a symlink. */
export function readOwnFileArgv(file: string, guarded: string[], maxBytes: number): string[] {
  return ['sh', '-c', script, 'ha-own-read', String(maxBytes), file, ...guarded]
}

export type OwnFileRead = {bytes: Buffer; state: 'file'} | {problem: string; state: 'bad'} | {state: 'absent'}

/**
 * The script's answer. `where` names the file (node:path) in every problem; `kind` says what
 * the file should be ("an epoch file of ha's") when it is too large to be one.
 */
export function interpretOwnFileRead(code: number, stdout: Buffer, stderr: Buffer | string, where: string, maxBytes: number, kind: string): OwnFileRead {
  const nl = stdout.indexOf(0x0a)
  const head = (nl === -1 ? stdout : stdout.subarray(0, nl)).toString('utf8')
  if (code === 124 || code === 137) return {problem: `${where}: reading it timed out (a FIFO or a hung filesystem?)`, state: 'bad'}
  if (code !== 0 || nl === -1) {
    const err = stderr.toString().trim().split('\n').at(-1)
    return {problem: `${where}: cannot read it (exit ${code}${err ? `: ${err}` : ''})`, state: 'bad'}
  }

  if (head === 'absent') return {state: 'absent'}
  if (head.startsWith('symlink ')) return {problem: `${where}: ${head.slice(8)} is a symlink; ha never follows one in its own files`, state: 'bad'}
  if (head.startsWith('other ')) return {problem: `${where} is a ${head.slice(6)}, not a file`, state: 'bad'}
  if (head !== 'file') return {problem: `${where}: the reading gave an unexpected answer`, state: 'bad'}
  const bytes = stdout.subarray(nl + 1)
  if (bytes.length > maxBytes) return {problem: `${where} is larger than ${maxBytes} bytes: not ${kind}`, state: 'bad'}
  return {bytes, state: 'file'}
}
