/**
 * Where the config comes from, apart from reading it (config/load.ts): a command that only needs
 * the path, or needs it before it reads the file, does not load the YAML parser and the schema.
 */
export const defaultConfigPath = '/etc/ha/ha.yaml'

/** Where the config comes from: --config, then HA_CONFIG, then /etc/ha/ha.yaml. */
export function configPathFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? (env.HA_CONFIG || defaultConfigPath)
}
