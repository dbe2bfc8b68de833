import {HaCommand} from '../../cli/base-command.js'
import {Flags} from '../../cli/oclif.js'
import {ExitCode} from '../../core/errors.js'

export default class LabUp extends HaCommand<typeof LabUp> {
  static needsRoot = 'the lab is made of network namespaces, loop devices and mounts'

  static description = `Builds the two-controller lab on this machine (root): namespaces ha-lab-admin, ha-lab-primary and
ha-lab-secondary on a bridge; each controller a small container with its own /, /etc, mount table,
processes, boot id, sshd and cron; the service IP and a tiny service on the primary, and an ext4 loop
device mounted (inside the primary only) as its data directory. Whatever a previous or crashed lab left
is removed first. Addresses come only from 198.18.0.0/15 and exist only inside the lab's namespaces.
Writes a production-like config (root: /, reached over ssh) to <lab dir>/ha.yaml and each node's
/etc/ha/ha.yaml. With --cluster, each controller also runs corosync 3 (knet, two_node) and pacemaker
2.1 from its own init, with stonith-enabled=true and a lab fence agent (fence_ha_lab) that powers a node
off, on or cycles it through the lab's BMC, as ha lab halt, boot and reboot do. With --guests, each
controller also runs its own libvirtd (QEMU, TCG), reachable from the other at qemu+tcp://ADDRESS/system,
and the lab's tiny guest's disk (a boot sector printing a heartbeat on its serial port) is in a folder
both controllers see, so a guest can live-migrate between them.`

  static examples = [
    '<%= config.bin %> lab up',
    'HA_LAB_DIR=/tmp/my-lab <%= config.bin %> lab up --json',
    '<%= config.bin %> lab up --cluster',
    '<%= config.bin %> lab up --guests',
    'ip netns exec ha-lab-admin <%= config.bin %> check --config /var/lib/ha-lab/ha.yaml',
  ]

  static flags = {
    cluster: Flags.boolean({description: 'also run a real two-node cluster in the controllers: corosync, pacemaker, fencing through fence_ha_lab'}),
    guests: Flags.boolean({description: 'also run libvirtd in each controller (QEMU, TCG; qemu+tcp between them) and provide the lab\'s tiny guest\'s disk'}),
    'lab-dir': Flags.string({description: 'the lab directory (default: $HA_LAB_DIR, then /var/lib/ha-lab)'}),
  }

  static summary = 'Bring the two-controller lab up (fresh, idempotent)'

  async run(): Promise<unknown> {
    const {flags} = await this.parse(LabUp)
    const {labUp} = await import('../../lab/lab.js')
    const started = Date.now()
    const status = await labUp({cluster: flags.cluster, guests: flags.guests, labDir: flags['lab-dir'], onProgress: (m) => this.reporter.info(m)})
    const result = {...status, seconds: (Date.now() - started) / 1000}
    const human = (r: typeof result) =>
      [
        `lab up in ${r.seconds.toFixed(1)}s: ${r.nodes.primary.hostname} ${r.nodes.primary.address} (service ${r.service_ip}), ${r.nodes.secondary.hostname} ${r.nodes.secondary.address}`,
        ...(r.cluster ? [`cluster: corosync and pacemaker started in both nodes; ha lab status shows their view`] : []),
        ...(r.guests ? [`guests: libvirtd started in both nodes (qemu+tcp://${r.nodes.primary.address.split('/')[0]}/system, qemu+tcp://${r.nodes.secondary.address.split('/')[0]}/system); ha lab status lists their domains`] : []),
        `config: ${r.config_path}`,
        `run ha from the admin side: ip netns exec ${r.admin.netns} ha <command> --config ${r.config_path}`,
      ].join('\n')
    return this.finish(result, ExitCode.ok, () => human(result))
  }
}
