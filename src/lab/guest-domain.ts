import {copyFile, mkdir, truncate} from 'node:fs/promises'
import {join} from 'node:path'

import {guestImagesDir, sharedImagesDir} from './guests.js'
import {checkoutDir} from './power.js'

/**
 * The guest lab's tiny guest: lab/heartbeat.bin (a 512-byte boot sector, its source beside it in
 * lab/heartbeat.asm) that prints "heartbeat N" on its serial port five times a second and powers
 * off on an ACPI power button press. Its disk is an image in the lab directory's guests/images,
 * which every node sees at the same path (sharedImagesDir), so both nodes' QEMU can open it at
 * once, as a live migration needs; the lab's shared storage cannot serve: its ext4 is mounted in
 * one node at a time. The disk is read-only (the guest never writes), which is also what makes
 * libvirt accept a live migration of it without a cluster filesystem or cache='none'.
 */

export const guestImageName = 'heartbeat.img'
/** The committed boot sector (and its source, heartbeat.asm, beside it). */
export const bootSectorPath = join(checkoutDir, 'lab', 'heartbeat.bin')
/** SeaBIOS does not boot a virtio disk of a few KiB (seen here up to 64 KiB); 1 MiB, sparse, does. */
const imageSize = 1024 * 1024
/** The guest's RAM: what a live migration copies. */
export const guestMemoryMiB = 16

/** The guest's disk image in the shared folder: the boot sector, padded (sparse) to imageSize. */
export async function writeGuestImage(labDir: string): Promise<string> {
  await mkdir(guestImagesDir(labDir), {recursive: true})
  const image = join(guestImagesDir(labDir), guestImageName)
  await copyFile(bootSectorPath, image)
  await truncate(image, imageSize)
  return image
}

/** Where a node's QEMU writes the guest's serial output (the node's own /var/log; the machine reads it at <node>/root + this). */
export function serialLogPath(name: string): string {
  return `/var/log/libvirt/qemu/${name}.serial.log`
}

/** The heartbeat counters of the complete lines of the guest's serial output (a line cut by a migration is not counted). */
export function heartbeats(serialText: string): number[] {
  return serialText
    .split('\n')
    .slice(0, -1)
    .map((line) => /^heartbeat (\d+)\r?$/.exec(line)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
}

/**
 * The domain: TCG (type='qemu', no KVM in the nodes), QEMU's "pc" machine (the boot sector's ACPI
 * ports are the PIIX4's), one vCPU, ACPI on (virsh shutdown presses its power button), the shared
 * read-only disk on virtio, COM1 to a file, and nothing else: no network, graphics, USB, balloon.
 */
export function guestDomainXml(name: string): string {
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(name)) throw new Error(`lab: guest name ${name} is not a lab guest name`)
  return `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>${guestMemoryMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
  </features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='${sharedImagesDir}/${guestImageName}'/>
      <target dev='vda' bus='virtio'/>
      <readonly/>
    </disk>
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='${serialLogPath(name)}'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
`
}
