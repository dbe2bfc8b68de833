/**
 * Test hook for the kill tests: with HA_TEST_PAUSE_AT=<phase> in its environment, a restore
 * command stops itself (SIGSTOP) at that phase boundary, so the test can SIGKILL it at exactly
 * that instant. Nothing sets the variable but a test; unset, this is one comparison.
 */
export function pauseAt(phase: string): void {
  if (process.env.HA_TEST_PAUSE_AT === phase) process.kill(process.pid, 'SIGSTOP')
}

/**
 * Lets a pending Ctrl-C reach its handler: signals are read in the event loop's poll phase, and
 * one setImmediate can resolve before the next poll, so two turns are taken.
 */
export async function signalsSeen(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
  await new Promise((resolve) => setImmediate(resolve))
}
