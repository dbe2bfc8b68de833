import {readFile} from 'node:fs/promises'

import {netnsPath, run, type RunOptions, type RunResult} from './exec.js'
import {labNetns, type LabNode, nodePaths} from './layout.js'

/**
 * A lab controller as a small container: PID 1 of fresh mount, UTS, IPC and PID namespaces,
 * inside the node's network namespace. Phase one (node-init, below) runs with the machine's
 * filesystem still visible: it builds the node's `/` from its folder (the machine's /usr and the
 * checkout bind-mounted read-only, own /proc, /sys, /dev, /run, /tmp, the boot id file over
 * /proc/sys/kernel/random/boot_id), pivots into it and execs the node's own /sbin/init. When that
 * PID 1 ends, the kernel kills everything else in the node and its mount namespace (and every
 * mount made in it) goes away: a power cut.
 */

export const nodeInitScript = `#!/bin/sh
# ha lab: phase one of a lab controller's boot (PID 1 of its new namespaces; the machine's files
# still visible). Usage: node-init ROOT RUN_DIR CHECKOUT SBIN_DIR [HOST_DEVICE=NODE_DEVICE...]
set -eu
root=$1 run=$2 checkout=$3 sbin=$4
shift 4
# Nothing mounted here may leak back to the machine, nor the machine's later mounts in here.
mount --make-rprivate /
mount --bind "$root" "$root"
mount -t tmpfs -o nosuid,nodev,mode=755,size=64m run "$root/run"
mount -t tmpfs -o nosuid,nodev,mode=1777,size=256m tmp "$root/tmp"
mount --bind /usr "$root/usr"
mount -o remount,bind,ro "$root/usr"
mount --bind "$sbin" "$root/usr/local/sbin"
mount -o remount,bind,ro "$root/usr/local/sbin"
# A cluster lab: fence_ha_lab joins the machine's /usr/sbin (where pacemaker looks for fence
# agents), read-only, and the lab's BMC socket folder is the node's /run/ha-lab-bmc.
lab=$(dirname "$sbin")
if [ -d "$lab/cluster/sbin" ]; then
  mount -t overlay -o ro,lowerdir="$lab/cluster/sbin":/usr/sbin overlay "$root/usr/sbin"
fi
# ... and ha's resource agent, as the package ships it, joins /usr/lib/ocf/resource.d (ocf:ha:controller).
if [ -d "$lab/cluster/ocf" ]; then
  mount -t overlay -o ro,lowerdir="$lab/cluster/ocf":/usr/lib/ocf/resource.d overlay "$root/usr/lib/ocf/resource.d"
fi
if [ -d "$run/bmc" ]; then
  mkdir -p "$root/run/ha-lab-bmc"
  mount --bind "$run/bmc" "$root/run/ha-lab-bmc"
fi
# A guest lab: the lab's guest images, at the same path in every node, as an NFS export would be.
if [ -d "$lab/guests/images" ]; then
  mkdir -p "$root/var/lib/libvirt/images/shared"
  mount --bind "$lab/guests/images" "$root/var/lib/libvirt/images/shared"
fi
# After /tmp and /run, so a checkout under /tmp is not hidden; one under /usr is there already.
case "$checkout" in
  /usr/*) ;;
  *)
    mkdir -p "$root$checkout"
    mount --bind "$checkout" "$root$checkout"
    mount -o remount,bind,ro "$root$checkout" ;;
esac
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount --bind "$run/boot_id" "$root/proc/sys/kernel/random/boot_id"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o nosuid,mode=755,size=1m dev "$root/dev"
for dev in /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; do
  [ -e "$dev" ] || continue
  touch "$root$dev"
  mount --bind "$dev" "$root$dev"
done
# The node's block devices (the shared storage) are device nodes of its own /dev, as on a real
# host: a bind mount would be a mount point that a umount of the device (Pacemaker's Filesystem
# agent unmounts whatever /proc/mounts names it at) takes away. Each argument is HOST=NODE: the
# machine's device and the name the node knows it by.
for pair in "$@"; do
  dev=\${pair%%=*} name=\${pair#*=}
  [ -b "$dev" ] || continue
  mkdir -p "$root$(dirname "$name")"
  mknod -m 600 "$root$name" b $((0x$(stat -c %t "$dev"))) $((0x$(stat -c %T "$dev")))
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
cd "$root"
mkdir -p .old-root
pivot_root . .old-root
cd /
umount -l /.old-root
rmdir /.old-root
exec /sbin/init
`

/** The node's /sbin/init (phase two, already inside its own `/`). */
export const sbinInit = `#!/bin/sh
# ha lab: init of a lab controller (PID 1). /sbin/reboot and /sbin/halt signal it: it runs the
# stop scripts of /etc/rc0.d (a cluster lab's pacemaker and corosync leave the cluster cleanly),
# then ends; every process of the node dies and every mount made in it goes, like power going off.
down() {
  for script in /etc/rc0.d/K*; do
    [ -x "$script" ] || continue
    "$script" stop || echo "init: $script stop failed"
  done
  sleep 0.5
  exit "$1"
}
trap 'down 10' USR1
trap 'down 11' USR2
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 022
cat /etc/hostname > /proc/sys/kernel/hostname
echo "$(date -u +%FT%TZ) init: booting $(hostname), boot id $(cat /proc/sys/kernel/random/boot_id)"
mount -a || echo "init: mount -a failed"
for script in /etc/rc2.d/S*; do
  [ -x "$script" ] || continue
  "$script" start || echo "init: $script start failed"
done
echo "$(date -u +%FT%TZ) init: $(hostname) up"
# The lab's boot waits for this (it reads it through /proc/PID/root from the machine's side).
: > /run/lab-booted
while :; do
  sleep 3600 &
  wait $!
done
`

/** /sbin/reboot and /sbin/halt: return at once, as shutdown -r/-h do, so the ssh session that asked ends normally. */
export function powerScript(what: 'halt' | 'reboot'): string {
  const signal = what === 'reboot' ? 'USR1' : 'USR2'
  return `#!/bin/sh
# ha lab: ${what} of a lab controller: init runs the node's stop scripts (/etc/rc0.d), then ends every process of it.
kill -${signal} 1
echo "$(hostname) is going down for ${what} now"
`
}

/** Host pid of the node's PID 1 (the child of its unshare), or undefined when the node is down. */
export async function nodeInitPid(labDir: string, node: LabNode): Promise<number | undefined> {
  const unsharePid = Number((await readFile(nodePaths(labDir, node).containerPid, 'utf8').catch(() => '')).trim())
  if (!Number.isInteger(unsharePid) || unsharePid <= 0) return undefined
  // A recycled pid is not the node: the lab's unshare carries the lab directory in its argv.
  const cmdline = await readFile(`/proc/${unsharePid}/cmdline`, 'utf8').catch(() => '')
  if (!cmdline.includes(`${labDir}/`) || !cmdline.includes('unshare')) return undefined
  const children = (await readFile(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean)
  const pid = Number(children[0])
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

/** The argv that runs `argv` inside the node: its namespaces, its `/`. */
export function inNodeArgv(initPid: number, argv: string[]): string[] {
  return ['nsenter', '-t', String(initPid), '-m', '-u', '-i', '-n', '-p', '-r', '-w', '--', ...argv]
}

/** Runs argv inside a running node; fails when the node is down. */
export async function runInNode(labDir: string, node: LabNode, argv: string[], options: RunOptions = {}): Promise<RunResult> {
  const pid = await nodeInitPid(labDir, node)
  if (pid === undefined) {
    const {HaError} = await import('../core/errors.js')
    throw new HaError(`lab: ${node} is not running`, {actions: [`ha lab boot ${node}`]})
  }

  return run(inNodeArgv(pid, argv), options)
}

/** The host-side argv that starts a node: its init becomes PID 1 of new namespaces in its network namespace. */
export function containerArgv(labDir: string, node: LabNode, nodeInit: string, checkout: string, sbinDir: string, devices: string[]): string[] {
  const paths = nodePaths(labDir, node)
  return [
    'nsenter',
    `--net=${netnsPath(labNetns[node])}`,
    '--',
    'unshare',
    '--mount',
    '--uts',
    '--ipc',
    '--pid',
    '--fork',
    '--kill-child=SIGKILL',
    '--',
    '/bin/sh',
    nodeInit,
    paths.root,
    paths.runDir,
    checkout,
    sbinDir,
    ...devices,
  ]
}
