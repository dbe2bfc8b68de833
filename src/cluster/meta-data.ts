/**
 * ocf:ha:controller's meta-data (the OCF resource agent API's XML): what Pacemaker, crm_resource
 * --show-metadata and pcs show an admin. The timeouts are the least a start or stop may need: a
 * start restores the saved state and re-owns the data directory (minutes on a large one), a stop
 * makes a last backup first.
 */
export const agentTimeouts = {monitor: 60, start: 600, stop: 600, 'validate-all': 30} as const

export function agentMetaData(): string {
  return `<?xml version="1.0"?>
<!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="controller" version="1.0">
  <version>1.0</version>
  <longdesc lang="en">
The controller service that ha moves between two nodes sharing storage (ha.yaml, failover.mode: service).
Put it last in a group after the storage (Filesystem, ZFS or LVM-activate) and the service IPs (IPaddr2):
start restores the state the active node saved outside the data directory (ha restore, no identity
files), notes the node as active on the storage (the epoch) and starts the product's services; stop makes
a last backup into the data directory and stops them. A node whose product version differs from the
other node's, or that has seen a newer epoch than the storage holds, fails start with "not installed"
(Pacemaker bans the resource from that node) and never starts the service. ha cluster setup prints
the whole configuration.
  </longdesc>
  <shortdesc lang="en">ha: the controller service (restore, epoch, services)</shortdesc>
  <parameters>
    <parameter name="config" unique="0" required="0">
      <longdesc lang="en">The ha configuration file on the nodes (the same file on both).</longdesc>
      <shortdesc lang="en">ha.yaml</shortdesc>
      <content type="string" default="/etc/ha/ha.yaml"/>
    </parameter>
    <parameter name="node" unique="0" required="0">
      <longdesc lang="en">Which configured node this machine is (primary or secondary); empty: the node whose hostname in the configuration is this machine's.</longdesc>
      <shortdesc lang="en">primary or secondary</shortdesc>
      <content type="string" default=""/>
    </parameter>
    <parameter name="ha" unique="0" required="0">
      <longdesc lang="en">The ha program (a name on the PATH, or an absolute path).</longdesc>
      <shortdesc lang="en">ha program</shortdesc>
      <content type="string" default="ha"/>
    </parameter>
  </parameters>
  <actions>
    <action name="start" timeout="${agentTimeouts.start}s"/>
    <action name="stop" timeout="${agentTimeouts.stop}s"/>
    <action name="monitor" depth="0" timeout="${agentTimeouts.monitor}s" interval="10s"/>
    <action name="monitor" depth="10" timeout="${agentTimeouts.monitor}s" interval="60s"/>
    <action name="monitor" depth="20" timeout="${agentTimeouts.monitor}s" interval="300s"/>
    <action name="validate-all" timeout="${agentTimeouts['validate-all']}s"/>
    <action name="meta-data" timeout="5s"/>
  </actions>
</resource-agent>
`
}
