import {createInterface} from 'node:readline/promises'

/** One typed answer at the terminal (stderr, so stdout stays the result). Replaced by src/prompt.ts once that seam exists. */
export async function askTyped(question: string): Promise<string> {
  const rl = createInterface({input: process.stdin, output: process.stderr, terminal: true})
  try {
    return (await rl.question(`${question} `)).trim()
  } finally {
    rl.close()
  }
}
