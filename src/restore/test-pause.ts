/**
 * Test hook for the kill tests: with HA_TEST_PAUSE_AT=<phase> in its environment, a restore
 * command stops itself (SIGSTOP) at that phase boundary, so the test can SIGKILL it at exactly
 * that instant. Nothing sets the variable but a test; unset, this is one comparison.
 */
export function pauseAt(phase: string): void {
  if (process.env.HA_TEST_PAUSE_AT === phase) process.kill(process.pid, 'SIGSTOP')
}
