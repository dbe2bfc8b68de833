import {describeSystemError} from '../../core/errors.js'

/**
 * Output that cannot be written is a failure the operator is told about in one line, never a
 * Node stack trace: stdout on a full disk (`ha backup list > /dev/full`: ENOSPC, thrown by the
 * synchronous write to a file) or a pipe whose reader has gone (`ha backup list --json | head -1`:
 * EPIPE, emitted as an error event). The first failure is said once on stderr (a closed pipe is
 * not: its reader asked for no more); everything after it is dropped, since the output is already
 * incomplete. A command that otherwise succeeded exits
 * 1 (failed: its output did not arrive); a command that failed keeps its own code, so a stopped
 * failover still says 5.
 */
export function guardStdout(stdout: NodeJS.WriteStream = process.stdout, stderr: NodeJS.WriteStream = process.stderr): void {
  let failure: NodeJS.ErrnoException | undefined
  const fail = (error: unknown) => {
    if (failure) return
    failure = error as NodeJS.ErrnoException
    // The reader went away (`| head -1`): it asked for no more, as with any tool killed by SIGPIPE.
    if (failure.code === 'EPIPE') return
    try {
      stderr.write(`ha: cannot write to stdout: ${describeSystemError(error).replace(/, write$/, '')}; the output is incomplete\n`)
    } catch {}
  }

  const write = stdout.write.bind(stdout) as (...args: unknown[]) => boolean
  stdout.write = ((...args: unknown[]) => {
    if (failure) return true
    try {
      return write(...args)
    } catch (error) {
      fail(error)
      return true
    }
  }) as typeof stdout.write
  // @oclif/core's own listener swallows EPIPE and rethrows anything else (the stack trace): ha's replaces it.
  stdout.removeAllListeners('error')
  stdout.on('error', fail)
  // Also when oclif ends with process.exit(code): the listener's exitCode is the one the process ends with.
  // A failed write is reported as an error event on the next tick; a command that ends at once
  // with process.exit (a refusal, exit 11) never reaches that tick, so the stream is asked here.
  process.on('exit', (code) => {
    const errored = (stdout as {errored?: Error | null}).errored
    if (errored) fail(errored)
    if (failure && code === 0) process.exitCode = 1
  })
}
