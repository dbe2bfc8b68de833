import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'

import {bootTools} from './boot-tools.js'

type Need = 'arping' | 'boot-tools' | 'libvirt' | 'loop' | 'nasm' | 'netns' | 'ocf-tester' | 'pacemaker' | 'root' | 'sshd' | 'tmux'

/**
 * Tests that need root, sshd, loop devices or network namespaces call this first. Outside CI a
 * missing prerequisite skips the test with the reason; under CI=true it is a failure, because a
 * suite that silently skips its real-world tests proves nothing.
 */
export function missingPrerequisite(needs: Array<Need>): string | undefined {
  for (const need of needs) {
    const problem = check(need)
    if (problem) {
      if (process.env.CI === 'true') throw new Error(`prerequisite missing under CI: ${problem}`)
      return problem
    }
  }

  return undefined
}

function check(need: Need): string | undefined {
  switch (need) {
    case 'root': {
      return process.getuid?.() === 0 ? undefined : 'needs root'
    }

    case 'sshd': {
      return existsSync('/usr/sbin/sshd') ? undefined : 'needs /usr/sbin/sshd (apt-get install openssh-server)'
    }

    case 'tmux': {
      return existsSync('/usr/bin/tmux') ? undefined : 'needs tmux (apt-get install tmux)'
    }

    case 'boot-tools': {
      return bootTools.problem()
    }

    case 'pacemaker': {
      // The cluster lab's daemons and tools (ha lab up --cluster).
      const missing = ['/usr/sbin/corosync', '/usr/sbin/pacemakerd', '/usr/sbin/crm_mon', '/usr/sbin/stonith_admin'].filter((file) => !existsSync(file))
      return missing.length === 0 ? undefined : `needs ${missing.join(', ')} (apt-get install corosync pacemaker pacemaker-cli-utils)`
    }

    case 'libvirt': {
      // The guest lab's daemon, client, QEMU driver and QEMU (ha lab up --guests).
      const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64'
      const files = ['/usr/sbin/libvirtd', '/usr/bin/virsh', `/usr/lib/${arch}-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so`, '/usr/bin/qemu-system-x86_64', '/usr/bin/virt-xml-validate']
      const missing = files.filter((file) => !existsSync(file))
      return missing.length === 0 ? undefined : `needs ${missing.join(', ')} (apt-get install libvirt-daemon libvirt-clients libvirt-daemon-driver-qemu qemu-system-x86)`
    }

    case 'nasm': {
      return existsSync('/usr/bin/nasm') ? undefined : 'needs nasm (apt-get install nasm)'
    }

    case 'ocf-tester': {
      // An OCF agent judged as resource-agents judges it: ocf-tester, and xmllint for its meta-data.
      const missing = ['/usr/sbin/ocf-tester', '/usr/bin/xmllint', '/usr/share/resource-agents/ra-api-1.dtd'].filter((file) => !existsSync(file))
      return missing.length === 0 ? undefined : `needs ${missing.join(', ')} (apt-get install resource-agents libxml2-utils)`
    }

    case 'arping': {
      return existsSync('/usr/bin/arping') ? undefined : 'needs arping (apt-get install iputils-arping)'
    }

    case 'loop': {
      return spawnSync('losetup', ['-f'], {encoding: 'utf8'}).status === 0 ? undefined : 'needs a free loop device'
    }

    case 'netns': {
      const name = `ha-probe-${process.pid}`
      const ok = spawnSync('ip', ['netns', 'add', name]).status === 0
      if (ok) spawnSync('ip', ['netns', 'del', name])
      return ok ? undefined : 'needs network namespaces (ip netns add)'
    }
  }
}
