#!/usr/bin/env node
// Makes a fresh clone runnable: npm packages from the lockfile, the Debian packages the tests and
// the lab need (as root), and a build. Idempotent and quick when everything is already there.
import {execFileSync, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

const top = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, {cwd: top, stdio: 'inherit', ...opts})
  if (r.status !== 0) {
    console.error(`ensure-deps: ${cmd} ${args.join(' ')} failed (exit ${r.status})`)
    process.exit(r.status ?? 1)
  }
}

// 1. npm packages, exactly as locked.
const stamp = join(top, 'node_modules/.package-lock.json')
if (!existsSync(stamp) || statSync(stamp).mtimeMs < statSync(join(top, 'package-lock.json')).mtimeMs) {
  run('npm', ['ci', '--no-audit', '--no-fund'])
}

// 2. Debian packages: the tests and the lab use a real sshd, arping, ip and loop devices.
const wanted = [
  ['openssh-server', '/usr/sbin/sshd'],
  ['openssh-client', '/usr/bin/ssh-keygen'],
  ['iputils-arping', '/usr/bin/arping'],
  ['iproute2', '/usr/sbin/ip'],
  ['e2fsprogs', '/usr/sbin/mkfs.ext4'],
  ['util-linux', '/usr/sbin/losetup'],
  ['util-linux', '/usr/bin/nsenter'],
  ['mount', '/usr/bin/mount'],
  ['tar', '/usr/bin/tar'],
  ['gzip', '/usr/bin/gzip'],
  // The benches' yardsticks: pigz (bench/backup), GNU time's peak RSS of a child (bench/memory).
  ['pigz', '/usr/bin/pigz'],
  ['time', '/usr/bin/time'],
  // The version-file differential test compiles and runs Java's own Properties.load.
  ['default-jdk-headless', '/usr/bin/javac'],
  // The lab's controllers and ha schedule's test: a real cron daemon; a shifted clock (ha lab skew).
  ['cron', '/usr/sbin/cron'],
  ['libfaketime', `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/faketime/libfaketime.so.1`],
  // A real terminal for the tests of what an admin sees and types (confirmations, progress).
  ['tmux', '/usr/bin/tmux'],
  // Shells whose completion of ha the tests try (bash is there already).
  ['zsh', '/usr/bin/zsh'],
  // Renders the man page the build writes (test: it must render without warnings).
  ['groff-base', '/usr/bin/groff'],
  // ha schedule's test runs cron in a mount namespace of its own.
  ['util-linux', '/usr/bin/unshare'],
  // The cluster lab (ha lab up --cluster): corosync 3 and pacemaker 2.1, run only inside the lab's
  // nodes; resource-agents for the stock OCF agents (IPaddr2, Filesystem) and ocf-tester.
  ['corosync', '/usr/sbin/corosync'],
  ['pacemaker', '/usr/sbin/pacemakerd'],
  ['pacemaker-cli-utils', '/usr/sbin/crm_mon'],
  ['resource-agents', '/usr/sbin/ocf-tester'],
  // The stock Filesystem agent refuses to run without modprobe (its setup check).
  ['kmod', '/usr/sbin/modprobe'],
  // ocf-tester validates an agent's meta-data against the OCF DTD with xmllint.
  ['libxml2-utils', '/usr/bin/xmllint'],
  // The guest lab (ha lab up --guests): libvirtd and virsh, libvirt's QEMU driver and QEMU itself
  // (TCG; the lab's guests need no KVM), run only inside the lab's nodes; nasm assembles the lab
  // guest's boot sector (test/lab/guest-image.test.ts checks the committed bytes against it).
  ['libvirt-daemon', '/usr/sbin/libvirtd'],
  ['libvirt-clients', '/usr/bin/virsh'],
  ['libvirt-daemon-driver-qemu', `/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so`],
  ['qemu-system-x86', '/usr/bin/qemu-system-x86_64'],
  ['nasm', '/usr/bin/nasm'],
]
// Daemons whose packages enable and start them on install; on this machine they run only inside
// the lab's nodes, never on the machine itself. (libvirt-daemon enables nothing: Debian 12 ships
// libvirtd's, virtlogd's and virtlockd's units in libvirt-daemon-system, which is not installed.)
const machineOff = ['corosync', 'pacemaker']
const missing = [...new Set(wanted.filter(([, file]) => !existsSync(file)).map(([pkg]) => pkg))]
if (missing.length > 0) {
  if (process.getuid?.() === 0) {
    const env = {...process.env, DEBIAN_FRONTEND: 'noninteractive'}
    run('apt-get', ['update', '-qq'], {env})
    // --no-install-recommends keeps it small. A policy-rc.d that refuses every start while apt
    // runs (invoke-rc.d and deb-systemd-invoke obey it): nothing installed here starts on the
    // machine (sshd is started by the tests, corosync and pacemaker by the lab inside its nodes).
    const policy = '/usr/sbin/policy-rc.d'
    const ownPolicy = !existsSync(policy)
    if (ownPolicy) writeFileSync(policy, '#!/bin/sh\n# ensure-deps: no daemon starts while packages are installed\nexit 101\n', {mode: 0o755})
    try {
      run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], {env})
    } finally {
      if (ownPolicy) rmSync(policy, {force: true})
    }

    // Their units are enabled by the install: disabled, so the machine's next boot starts none.
    const installedOff = machineOff.filter((pkg) => missing.includes(pkg))
    if (installedOff.length > 0 && existsSync('/usr/bin/systemctl')) spawnSync('systemctl', ['disable', ...installedOff], {stdio: 'inherit'})
  } else {
    console.error(`ensure-deps: missing Debian packages (install as root): ${missing.join(' ')}`)
  }
}

// 3. Tools unpacked, not installed: the boot configuration tests ask NetworkManager's own keyfile
// reader and writer (nmcli --offline) and netplan's own generator what a node would bring up at
// boot. Installing network-manager or netplan.io would start daemons that take this machine's
// interfaces over, so their .deb files are fetched (apt-get download) and unpacked (dpkg -x) into
// .cache/unpacked, with each library they need that this machine has not installed. The tests run
// them from there (test/helpers/boot-tools.ts); nothing of them is on the machine's own paths.
const unpacked = join(top, '.cache/unpacked')
const bootTools = [`${unpacked}/usr/bin/nmcli`, `${unpacked}/usr/libexec/netplan/generate`]
// nmcli: libnm0 and its libraries; netplan's generator: libnetplan0 and its libraries.
const toolPackages = ['network-manager', 'libnm0', 'netplan.io', 'libnetplan0', 'libglib2.0-0', 'libgnutls30', 'libudev1', 'libyaml-0-2', 'libuuid1', 'libsystemd0']
if (!bootTools.every((file) => existsSync(file))) {
  const installed = (pkg) => spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], {encoding: 'utf8'}).stdout?.includes('install ok installed')
  const fetch = [...new Set(['network-manager', 'libnm0', 'netplan.io', 'libnetplan0', ...toolPackages.filter((pkg) => !installed(pkg))])]
  const debs = join(top, '.cache/debs')
  mkdirSync(debs, {recursive: true})
  const download = () => spawnSync('apt-get', ['download', '-qq', '-o', 'APT::Sandbox::User=root', ...fetch], {cwd: debs, stdio: 'inherit'}).status === 0
  let fetched = download()
  if (!fetched && process.getuid?.() === 0) {
    run('apt-get', ['update', '-qq'], {env: {...process.env, DEBIAN_FRONTEND: 'noninteractive'}})
    fetched = download()
  }

  // Only the boot configuration tests need them: without them those tests say so (and fail
  // under CI=true, see test/helpers/prereq.ts); everything else still runs.
  if (fetched) {
    for (const deb of readdirSync(debs).filter((name) => name.endsWith('.deb'))) run('dpkg', ['-x', join(debs, deb), unpacked])
    for (const file of bootTools.filter((f) => !existsSync(f))) console.error(`ensure-deps: ${file} is not in the unpacked packages`)
  } else {
    console.error(`ensure-deps: apt-get download ${fetch.join(' ')} failed: the boot configuration tests cannot run their tools`)
  }
}

// 4. Build (TypeScript and the oclif manifest) when a source is newer than the build.
const built = join(top, 'oclif.manifest.json')
const stale = () =>
  execFileSync('find', ['src', 'package.json', 'tsconfig.json', '-newer', built, '-type', 'f', '-print', '-quit'], {cwd: top, encoding: 'utf8'}).trim() !== ''
if (!existsSync(built) || !existsSync(join(top, 'dist')) || stale()) {
  run('npm', ['run', '--silent', 'build'])
}
