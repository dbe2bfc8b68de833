import {cp, chmod, lstat, mkdir, readdir, readlink, symlink, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import {addressOnly, labDataDir, labServiceIp, labServicePort} from './layout.js'
import {sbinInit} from './container.js'

/**
 * The system side of a lab controller's root: what makes the folder bootable as `/` — mount
 * points, the merged-/usr links, its own /sbin, the files from the machine's /etc that the
 * machine's binaries need to run (dynamic linker cache, PAM, alternatives), and its own init
 * scripts for sshd, cron and the service, started by /sbin/init the way sysvinit runs rc2.d.
 */

/** Files of the machine's /etc the bind-mounted /usr needs; the node's identity files are its own. */
const fromMachineEtc = ['ld.so.cache', 'ld.so.conf', 'ld.so.conf.d', 'alternatives', 'pam.d', 'security', 'nsswitch.conf', 'login.defs', 'localtime', 'timezone', 'environment', 'default/locale', 'ssh/moduli']

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  )
}

async function put(root: string, path: string, text: string, mode = 0o644): Promise<void> {
  const full = join(root, path)
  await mkdir(dirname(full), {recursive: true})
  await writeFile(full, text, {mode})
  await chmod(full, mode)
}

export interface NodeSystemOptions {
  /** The node program and the lab service's entry point, as argv (paths valid inside the node too). */
  serviceArgv: string[]
}

export async function writeNodeSystem(root: string, options: NodeSystemOptions): Promise<void> {
  for (const dir of ['proc', 'sys', 'dev', 'run', 'tmp', 'usr', 'root', 'var/log', 'var/tmp', 'var/spool/cron/crontabs', 'etc/cron.d', 'proc/sys/kernel/random']) {
    await mkdir(join(root, dir), {recursive: true})
  }

  await chmod(join(root, 'root'), 0o700)
  await chmod(join(root, 'tmp'), 0o1777)
  await chmod(join(root, 'var/tmp'), 0o1777)
  // The boot id bind-mount needs a file to cover.
  await writeFile(join(root, 'proc/sys/kernel/random/boot_id'), '')
  // Debian's merged /usr: /bin, /lib* are links into /usr (a machine without merged /usr gets
  // its directories bind-mounted by the same names instead... not supported: say so).
  for (const name of ['bin', 'lib', 'lib32', 'lib64', 'libx32']) {
    const machine = `/${name}`
    if (!(await exists(machine))) continue
    const stat = await lstat(machine)
    if (!stat.isSymbolicLink()) throw new Error(`lab: ${machine} is not a link into /usr; the lab needs a merged-/usr Debian`)
    await symlink(await readlink(machine), join(root, name))
  }

  // Its own /sbin: the machine's /usr/sbin by link, except what only the node may decide
  // (reboot, halt, init), so /sbin/reboot over ssh reboots this node and not the machine.
  await mkdir(join(root, 'sbin'))
  const own = new Set(['init', 'reboot', 'halt', 'poweroff', 'shutdown'])
  for (const name of await readdir('/usr/sbin')) {
    if (!own.has(name)) await symlink(`/usr/sbin/${name}`, join(root, 'sbin', name))
  }

  await put(root, '/sbin/init', sbinInit, 0o755)
  for (const [name, target] of [['reboot', 'reboot'], ['halt', 'halt'], ['poweroff', 'halt'], ['shutdown', 'halt']]) {
    await symlink(`/usr/local/sbin/${target}`, join(root, 'sbin', name))
  }

  for (const rel of fromMachineEtc) {
    const source = join('/etc', rel)
    if (await exists(source)) await cp(source, join(root, 'etc', rel), {dereference: false, preserveTimestamps: true, recursive: true, verbatimSymlinks: true})
  }

  await symlink('../proc/self/mounts', join(root, 'etc/mtab'))
  await symlink('/run', join(root, 'var/run'))
  await symlink('/run/lock', join(root, 'var/lock'))
  await put(root, '/etc/shells', '/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n')
  await put(root, '/etc/ssh/sshd_config', sshdConfig())
  await put(root, '/etc/init.d/ssh', sshInitScript(), 0o755)
  await put(root, '/etc/init.d/cron', cronInitScript(), 0o755)
  await put(root, '/etc/init.d/xvm', serviceInitScript(options.serviceArgv), 0o755)
  await mkdir(join(root, 'etc/rc2.d'), {recursive: true})
  await symlink('../init.d/ssh', join(root, 'etc/rc2.d/S01ssh'))
  await symlink('../init.d/cron', join(root, 'etc/rc2.d/S01cron'))
  await symlink('../init.d/xvm', join(root, 'etc/rc2.d/S02xvm'))
}

/** Debian's shipped sshd_config, minus comments; the differences are said. */
function sshdConfig(): string {
  return [
    '# ha lab: Debian\'s sshd_config (StrictModes, PermitRootLogin and AuthorizedKeysFile at their defaults).',
    'Include /etc/ssh/sshd_config.d/*.conf',
    'HostKey /etc/ssh/ssh_host_ed25519_key',
    'KbdInteractiveAuthentication no',
    'PasswordAuthentication no',
    'UsePAM yes',
    'X11Forwarding no',
    'PrintMotd no',
    'AcceptEnv LANG LC_*',
    'Subsystem sftp /usr/lib/openssh/sftp-server',
    '',
  ].join('\n')
}

function sshInitScript(): string {
  return `#!/bin/sh
# ha lab: /etc/init.d/ssh of a lab controller (sysvinit style; sshd daemonizes, /run/sshd.pid).
PIDFILE=/run/sshd.pid
running() { [ -s $PIDFILE ] && kill -0 "$(cat $PIDFILE)" 2>/dev/null; }
case "$1" in
  start)
    running && exit 0
    mkdir -p /run/sshd && chmod 0755 /run/sshd
    exec /usr/sbin/sshd -E /var/log/sshd.log ;;
  stop)
    running || exit 0
    pid=$(cat $PIDFILE)
    kill -CONT "$pid" 2>/dev/null; kill "$pid"
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f $PIDFILE ;;
  restart) "$0" stop && exec "$0" start ;;
  status) running ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
`
}

function cronInitScript(): string {
  return `#!/bin/sh
# ha lab: /etc/init.d/cron of a lab controller: Debian's cron daemon, reading this node's
# /etc/crontab, /etc/cron.d and /var/spool/cron/crontabs.
PIDFILE=/run/crond.pid
case "$1" in
  start) [ -x /usr/sbin/cron ] || { echo "cron is not installed (apt-get install cron)" >&2; exit 0; }; exec /usr/sbin/cron ;;
  stop) [ -s $PIDFILE ] && kill "$(cat $PIDFILE)"; rm -f $PIDFILE ;;
  status) [ -s $PIDFILE ] && kill -0 "$(cat $PIDFILE)" 2>/dev/null ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
`
}

/** The product's init script: starts only where the controller can really serve (the service IP and the data). */
function serviceInitScript(serviceArgv: string[]): string {
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`
  const ip = addressOnly(labServiceIp)
  return `#!/bin/sh
# ha lab: /etc/init.d/xvm: the controller's service (the product). LSB exit codes: status 3 = stopped.
IP=${ip}
DATA=${labDataDir}
PIDFILE=/run/xvm.pid
running() { [ -s $PIDFILE ] && kill -0 "$(cat $PIDFILE)" 2>/dev/null; }
case "$1" in
  start)
    running && exit 0
    if ! ip -o -4 addr show | grep -q " inet $IP/"; then
      echo "xvm: cannot start the service on $(hostname): it does not hold ${labServiceIp}" >&2; exit 1
    fi
    if ! mountpoint -q "$DATA"; then
      echo "xvm: cannot start the service on $(hostname): its data directory $DATA is not mounted" >&2; exit 1
    fi
    setsid ${serviceArgv.map(quote).join(' ')} --data-dir "$DATA" --listen $IP --port ${labServicePort} </dev/null >>/var/log/xvm.log 2>&1 &
    echo $! > $PIDFILE
    for i in $(seq 100); do
      ss -Hltn "sport = :${labServicePort}" | grep -q . && exit 0
      running || { echo "xvm: the service exited at start: $(tail -n 3 /var/log/xvm.log)" >&2; exit 1; }
      sleep 0.1
    done
    echo "xvm: the service does not listen on port ${labServicePort} after 10 s" >&2; exit 1 ;;
  stop)
    running || { rm -f $PIDFILE; exit 0; }
    kill "$(cat $PIDFILE)"; rm -f $PIDFILE ;;
  status) running && exit 0; exit 3 ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
`
}
