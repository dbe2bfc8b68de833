import {type FileStat, parseStatLine} from '../../hosts/host.js'
import type {BootConfigDriver, BootFile} from './driver.js'

/**
 * Every file of a driver's directory on a node, with its stat and its bytes, in one exec: what the
 * steps read before an edit (and the runner's write takes mode and owner from), and what ha check
 * and ha init look at. One line per name matching the driver's glob: the name in base64, ':' and
 * the content in base64 (a regular file, at most 1 MiB) or '-' (anything else), then the stat line
 * as SshHost.stat prints it (a symlink itself, never followed).
 */
const maxBytes = 1024 * 1024
const listScript = [
  'cd -- "$1" 2>/dev/null || exit 0',
  'for f in $2; do',
  '  [ -e "$f" ] || [ -L "$f" ] || continue',
  '  n=$(printf "%s" "$f" | base64 -w0)',
  '  s=$(stat -c "%f %s %u %g %Y" -- "$f") || exit 1',
  `  if [ -f "$f" ] && [ ! -L "$f" ]; then c=:$(head -c ${maxBytes + 1} -- "$f" | base64 -w0) || exit 1; else c=-; fi`,
  '  printf "%s %s %s\\n" "$n" "$c" "$s"',
  'done',
].join('\n')

/** A file as listed: its stat, and its text when it is a regular file ha may read. */
export interface ListedFile extends BootFile {
  stat: FileStat
  /** Why ha will not read or edit it (a symlink, not a regular file, too big), when so. */
  problem?: string
}

/** The argv that lists them; `dirOnHost` is the driver's directory resolved under the node's root. */
export function bootFilesArgv(driver: BootConfigDriver, dirOnHost: string): string[] {
  return ['sh', '-c', listScript, 'ha-boot-files', dirOnHost, driver.glob]
}

/** The listing's output, as host paths (dir/name), only the names the driver reads. */
export function parseBootFiles(driver: BootConfigDriver, stdout: string): ListedFile[] {
  const files: ListedFile[] = []
  for (const line of stdout.split('\n')) {
    const [name64, content, ...stat] = line.split(' ')
    if (!name64 || content === undefined) continue
    const name = Buffer.from(name64, 'base64').toString('utf8')
    if (!driver.matches(name)) continue
    const st = parseStatLine(stat.join(' '))
    if (!st) continue
    const path = `${driver.dir}/${name}`
    const bytes = content.startsWith(':') ? Buffer.from(content.slice(1), 'base64') : undefined
    const problem = st.type !== 'file' ? `is a ${st.type}, not a regular file; ha edits only regular files` : bytes && bytes.length > maxBytes ? `is larger than ${maxBytes} bytes` : undefined
    files.push({path, problem, stat: st, text: problem ? '' : (bytes ?? Buffer.alloc(0)).toString('utf8')})
  }

  return files
}
