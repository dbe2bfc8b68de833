export function makeControllerRoot(
  root: string,
  options?: {bulkBytes?: number; bulkFiles?: number; hostname?: string; sshKeys?: boolean; uidBase?: number; version?: string},
): {dataDir: string; root: string}
export function controllerConfig(options: {hostname?: string; include?: string[]; keep?: number; primaryRoot: string; secondaryRoot?: string; storage?: Record<string, string>}): string
