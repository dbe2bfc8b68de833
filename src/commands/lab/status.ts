import {HaCommand} from '../../cli/base-command.js'
import {Flags} from '../../cli/oclif.js'
import type {Colors} from '../../core/colors.js'
import {ExitCode} from '../../core/errors.js'

export default class LabStatus extends HaCommand<typeof LabStatus> {
  static needsRoot = 'the lab is made of network namespaces, loop devices and mounts'

  static description = 'Shows, per lab controller: namespace, addresses, boot id, sshd and service, whether it has the data directory mounted (in its own mount table), how many processes run in it, its clock skew, in a cluster lab what its pacemaker says (crm_mon: nodes online, quorum, DC) and, in a guest lab, its libvirt domains (virsh list --all). Exits 3 when the lab is not up.'

  static examples = ['<%= config.bin %> lab status', '<%= config.bin %> lab status --json']

  static flags = {
    'lab-dir': Flags.string({description: 'the lab directory (default: $HA_LAB_DIR, then /var/lib/ha-lab)'}),
  }

  static summary = 'Show the state of the lab'

  async run(): Promise<unknown> {
    const {flags} = await this.parse(LabStatus)
    const {labStatus} = await import('../../lab/lab.js')
    const status = await labStatus({labDir: flags['lab-dir']})
    const human = (s: typeof status, color: Colors) => {
      const lines = [`lab ${s.up ? color.green('up') : color.red('down')} (${s.lab_dir}; config ${s.config_path}; storage ${s.loop_device ?? 'none'})`]
      for (const [name, n] of Object.entries(s.nodes)) {
        lines.push(
          `  ${name} ${n.hostname} ${n.running ? 'running' : 'halted'} [${n.netns}${n.netns_exists ? '' : ' missing'}] addresses ${n.addresses.join(', ') || 'none'}; ` +
            `sshd ${n.sshd_running ? 'running' : 'stopped'}; service ${n.service_running ? 'running' : 'stopped'}; ` +
            `data dir ${n.data_dir_mounted ? 'mounted' : 'not mounted'}; ${n.processes} processes; boot id ${n.boot_id || '-'}` +
            (n.clock_skew_s ? `; clock ${n.clock_skew_s > 0 ? '+' : ''}${n.clock_skew_s}s` : ''),
        )
      }

      for (const [name, view] of Object.entries(s.cluster ?? {})) {
        if (!view) lines.push(`  cluster from ${name}: node halted`)
        else if (view.error) lines.push(`  cluster from ${name}: ${color.red('no view')} (${view.error.split('\n')[0]})`)
        else {
          const nodes = view.nodes.map((n) => `${n.name} ${n.online ? 'online' : n.unclean ? 'UNCLEAN' : 'offline'}`).join(', ')
          const fenced = view.fencing[0] ? `; last fencing: ${view.fencing[0].action} ${view.fencing[0].target} ${view.fencing[0].status} ${view.fencing[0].completed}` : ''
          lines.push(`  cluster from ${name}: ${nodes}; ${view.quorate ? 'quorate' : color.red('no quorum')}; DC ${view.dc ?? 'none'}${fenced}`)
        }
      }

      for (const [name, view] of Object.entries(s.guests ?? {})) {
        if (!view) lines.push(`  guests on ${name}: node halted`)
        else if (view.error) lines.push(`  guests on ${name}: ${color.red('libvirtd not answering')} (${view.error.split('\n')[0]})`)
        else lines.push(`  guests on ${name}: ${view.domains.map((d) => `${d.name} ${d.state}`).join(', ') || 'none defined'}`)
      }

      return lines.join('\n')
    }

    return this.finish(status, status.up ? ExitCode.ok : ExitCode.problems, (_r: unknown, color: Colors) => human(status, color), status.up ? undefined : 'the lab is not up (run ha lab up)')
  }
}
