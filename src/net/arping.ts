/**
 * `arping -D` (iputils, as Debian ships it) asks the wire who answers for an address, sending
 * from 0.0.0.0 so the probe itself claims nothing. Its exit status in -D mode is inverted from
 * what one might guess: 0 = no reply (the address is free), 1 = a reply came (someone holds it),
 * 2 = arping could not probe (no such interface, interface down, no permission) — and 0 again,
 * misleadingly, for an interface that cannot ARP (see interpretArping).
 */
export const arpingArgv = (address: string, iface: string): string[] => ['arping', '-D', '-c', '2', '-w', '3', '-I', iface, address]

/**
 * Run on a node for one service IP: skip the wire probe where the node holds the address itself
 * (it would not hear its own answer), so the probe always runs where the address would be taken.
 * Fixed text; the address and interface arrive as $1 and $2.
 */
export const arpingUnlessHeldScript = [
  `if ip -o -4 addr show | awk -v a="$1" '{ split($4, p, "/"); if (p[1] == a) f = 1 } END { exit !f }'; then`,
  `  echo "ha-arping: held here"; exit 0`,
  'fi',
  'exec arping -D -c 2 -w 3 -I "$2" "$1"',
].join('\n')

export const heldHereMarker = 'ha-arping: held here'

export type WireResult =
  | {state: 'answered'; macs: string[]}
  | {state: 'error'; exit_code: number; message: string}
  | {state: 'silent'}
  | {state: 'skipped_held_here'}

export function interpretArping(code: number, stdout: string, stderr: string): WireResult {
  if (code === 0 && stdout.startsWith(heldHereMarker)) return {state: 'skipped_held_here'}
  // iputils exits 0 in -D mode on an interface that cannot do ARP at all (loopback, NOARP):
  // "Interface "lo" is not ARPable". That is no evidence the address is free, so silence is
  // only believed when arping says it sent probes and got no response.
  if (code === 0 && /Received 0 response/.test(stdout) && !/not ARPable/.test(stdout)) return {state: 'silent'}
  if (code === 1) {
    const macs = [...stdout.matchAll(/reply from \S+ \[([0-9A-Fa-f:]{17})\]/g)].map((m) => m[1].toLowerCase())
    if (macs.length > 0) return {macs: [...new Set(macs)], state: 'answered'}
  }

  const message = (stderr.trim() || stdout.trim().split('\n').find((l) => !l.startsWith('ARPING ')) || 'arping gave no verdict').slice(0, 500)
  return {exit_code: code, message: code === 127 ? 'arping is not installed on this node' : message, state: 'error'}
}
