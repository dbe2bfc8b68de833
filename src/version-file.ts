/**
 * The controller's version file is a Java .properties file (seed 001: /n1gc-setup/.version.properties,
 * key product.version). Parsed as java.util.Properties does, because a hand-edited file with a
 * continuation line, an escaped separator or a `key: value` pair must not read as a different
 * version on one node than on the other.
 */
export function parseProperties(text: string): Map<string, string> {
  const result = new Map<string, string>()
  const lines = text.split(/\r\n|\r|\n/)
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].replace(/^[ \t\f]+/, '')
    if (line === '' || line.startsWith('#') || line.startsWith('!')) continue
    // A line ending in an odd number of backslashes continues on the next one (leading blanks dropped).
    while (endsWithOddBackslashes(line) && i + 1 < lines.length) {
      line = line.slice(0, -1) + lines[++i].replace(/^[ \t\f]+/, '')
    }

    if (endsWithOddBackslashes(line)) line = line.slice(0, -1)
    const {key, value} = splitKeyValue(line)
    result.set(unescape(key), unescape(value))
  }

  return result
}

function endsWithOddBackslashes(line: string): boolean {
  let count = 0
  for (let i = line.length - 1; i >= 0 && line[i] === '\\'; i--) count++
  return count % 2 === 1
}

function splitKeyValue(line: string): {key: string; value: string} {
  let i = 0
  while (i < line.length) {
    const c = line[i]
    if (c === '\\') {
      i += 2
      continue
    }

    if (c === '=' || c === ':' || c === ' ' || c === '\t' || c === '\f') break
    i++
  }

  const key = line.slice(0, i)
  let j = i
  while (j < line.length && /[ \t\f]/.test(line[j])) j++
  if (j < line.length && (line[j] === '=' || line[j] === ':')) j++
  while (j < line.length && /[ \t\f]/.test(line[j])) j++
  return {key, value: line.slice(j)}
}

function unescape(text: string): string {
  return text.replace(/\\(u[0-9a-fA-F]{4}|.)/g, (_m, esc: string) => {
    if (esc.length === 5) return String.fromCharCode(Number.parseInt(esc.slice(1), 16))
    switch (esc) {
      case 't': {
        return '\t'
      }

      case 'n': {
        return '\n'
      }

      case 'r': {
        return '\r'
      }

      case 'f': {
        return '\f'
      }

      default: {
        return esc
      }
    }
  })
}
