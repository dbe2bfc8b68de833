import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'

import {definitionMemoryKiB, definitionProblem, hugepageSizeKiB, parseDomainList, parseDomInfo, parseFreecell, parseFreeHugepages, parseJobInfo, usesHugepages, virshAct} from '../../src/guests/virsh.js'
import {guestSchema} from '../../src/config/schema.js'
import {missingPrerequisite} from '../helpers/prereq.js'

/**
 * What ha reads from virsh, read from what the machine's own virsh prints (its built-in test
 * driver, test:///default, a libvirt connection with no hypervisor behind it), and the argvs ha
 * runs, as an admin would type them.
 */
const virsh = (commands: string) => {
  const r = spawnSync('virsh', ['-c', 'test:///default', commands], {encoding: 'utf8'})
  assert.equal(r.status, 0, r.stderr)
  return r.stdout
}

const hugeXml = `<domain type='test'><name>huge1</name><memory unit='MiB'>64</memory><memoryBacking><hugepages/></memoryBacking><os><type>hvm</type></os></domain>`

describe('virsh output as ha reads it', {skip: missingPrerequisite(['libvirt'])}, () => {
  it('list --all, dominfo, freecell --all and freepages --all of a real virsh', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ha-virsh-'))
    t.after(() => rmSync(dir, {force: true, recursive: true}))
    writeFileSync(join(dir, 'huge1.xml'), hugeXml)
    const out = virsh(`define ${join(dir, 'huge1.xml')} ; list --all ; dominfo huge1 ; freecell --all ; freepages --all ; dumpxml --inactive huge1`)
    const list = out.slice(out.search(/ Id\s+Name\s+State/), out.search(/^Id:/m))
    const info = out.slice(out.search(/^Id:/m), out.search(/^Security DOI:/m))
    assert.deepEqual(parseDomainList(list), [
      {id: 1, name: 'test', state: 'running'},
      {id: null, name: 'huge1', state: 'shut off'},
    ])
    assert.deepEqual(parseDomInfo(info), {autostart: false, maxMemoryKiB: 65_536, persistent: true, state: 'shut off'})
    assert.equal(parseFreecell(out), 6144)
    assert.equal(parseFreeHugepages(out), 2 * 97 * 2048, 'the 2 MiB pages of both cells')
    assert.equal(parseFreeHugepages(out, 4096), undefined, 'a page size no cell lists: not known, not none')
    assert.equal(hugepageSizeKiB(out.slice(out.indexOf('<domain'))), undefined, 'hugepage-backed, no size named: the default')
    assert.ok(usesHugepages(out.slice(out.indexOf('<domain'))))
    assert.equal(definitionMemoryKiB(out.slice(out.indexOf('<domain'))), 65_536)
  })
})

describe('virsh output, by hand', () => {
  it('the huge page size a definition asks for, in KiB', () => {
    const backed = (page: string) => `<domain type='kvm'>\n  <name>db</name>\n  <memoryBacking>\n    <hugepages>\n      ${page}\n    </hugepages>\n  </memoryBacking>\n</domain>\n`
    assert.equal(hugepageSizeKiB(backed("<page size='1' unit='G' nodeset='0'/>")), 1024 * 1024)
    assert.equal(hugepageSizeKiB(backed("<page size='2048'/>")), 2048, 'KiB when no unit is given')
    assert.equal(hugepageSizeKiB(backed("<page size=\"2\" unit=\"MiB\"/>")), 2048)
    assert.equal(hugepageSizeKiB(backed("<page size='2' unit='MB'/>")), 0, 'a unit ha does not convert (decimal MB): not taken for 2 MiB')
    assert.equal(hugepageSizeKiB(backed('')), undefined, 'no size named: the default')
    assert.equal(hugepageSizeKiB("<domain>\n  <name>db</name>\n  <memory unit='GiB'>1</memory>\n</domain>\n"), undefined, 'not hugepage-backed')
  })

  it('domjobinfo --completed of an incoming migration (libvirt 9.0 prints it so)', () => {
    const job = parseJobInfo('Job type:         Completed\nOperation:        Incoming migration\nTime elapsed:     5123         ms\nData processed:   16.5 MiB\nTotal downtime:   23           ms\n')
    assert.deepEqual(job, {downtimeMs: 23, elapsedMs: 5123, operation: 'Incoming migration', type: 'Completed'})
    assert.equal(parseJobInfo('Job type:         None\n').type, 'None')
    assert.equal(parseJobInfo('Job type:         Unbounded\nOperation:        Outgoing migration\n').type, 'Unbounded')
  })

  it('a definition read back is a <domain> of that guest, of bounded size', () => {
    assert.equal(definitionProblem(`<domain type='kvm'>\n  <name>db1</name>\n</domain>`, 'db1'), undefined)
    assert.equal(definitionProblem(`<domain><name>db2</name></domain>`, 'db1'), 'names the domain db2, not db1')
    assert.equal(definitionProblem('<network><name>db1</name></network>', 'db1'), 'does not start with <domain>')
    assert.equal(definitionProblem(42, 'db1'), 'is not text')
    assert.equal(definitionProblem(`<domain><name>db1</name>${' '.repeat(2 * 1024 * 1024)}</domain>`, 'db1'), 'is larger than 1048576 bytes')
    assert.equal(definitionMemoryKiB(`<memory unit='GiB'>2</memory>`), 2 * 1024 * 1024)
    assert.equal(definitionMemoryKiB(`<memory>524288</memory>`), 524_288)
  })

  it('the argvs ha runs: a live migration copies disks only when told, a shutdown in the guest\'s mode', () => {
    const g = guestSchema.parse({disks: 'copy', move: 'live', name: 'web1', shutdown: {mode: 'agent'}})
    assert.deepEqual(virshAct.migrate('qemu:///system', g, 'qemu+ssh://root@ctl-b/system'), ['virsh', '-c', 'qemu:///system', 'migrate', '--live', '--persistent', '--copy-storage-all', 'web1', 'qemu+ssh://root@ctl-b/system'])
    assert.deepEqual(virshAct.migrate('qemu:///system', {...g, disks: 'shared'}, 'x:///y'), ['virsh', '-c', 'qemu:///system', 'migrate', '--live', '--persistent', 'web1', 'x:///y'])
    assert.deepEqual(virshAct.shutdown('lxc:///system', g), ['virsh', '-c', 'lxc:///system', 'shutdown', '--mode', 'agent', 'web1'])
  })
})
