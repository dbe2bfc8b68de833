import {readFileSync} from 'node:fs'

/** ha's own version, from package.json; recorded in every backup manifest. */
export const haVersion: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {version: string}
).version
