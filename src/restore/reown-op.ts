/** One change of the re-own — an entry, its owner before and after — and how it is applied without following a symlink out of the data directory. */
import {closeSync, constants, fchmodSync, fchownSync, fstatSync, lchownSync, openSync} from 'node:fs'

export const PROC_FD = '/proc/self/fd/'
export const S_IFMT = constants.S_IFMT
export const S_IFDIR = constants.S_IFDIR
export const S_IFREG = constants.S_IFREG
export const S_IFLNK = constants.S_IFLNK
export const SETID = 0o6000
export const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW
export const FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY
export const LSTAT_OPTS = {throwIfNoEntry: false} as const

/** How a change is applied. */
export enum How {
  /** lchown by /proc/self/fd/<dir>/<name>. */
  Path,
  /** A directory, through its own verified descriptor. */
  DirFd,
  /** A setuid/setgid regular file: open O_NOFOLLOW, verify, fchown, fchmod. */
  SetId,
}

export interface Op {
  fd: number
  gid0: number
  gid1: number
  how: How
  ino: number
  mode0: number
  path: string
  rel: string
  uid0: number
  uid1: number
}

/** Applies one journalled change; `counts` receives the races it had to skip. */
export function applyOp(op: Op, counts: {replaced: number; vanished: number}): void {
  switch (op.how) {
    case How.DirFd: {
      fchownSync(op.fd, op.uid1, op.gid1)
      // Linux keeps a directory's setgid bit across chown; put every special bit back regardless.
      if ((op.mode0 & 0o7000) !== 0) fchmodSync(op.fd, op.mode0 & 0o7777)
      return
    }

    case How.SetId: {
      let fd: number
      try {
        fd = openSync(op.path, FILE_FLAGS)
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'ENOENT') counts.vanished++
        else if (code === 'ELOOP') counts.replaced++
        else throw error
        return
      }

      try {
        const s = fstatSync(fd)
        if (s.ino !== op.ino || s.uid !== op.uid0 || s.gid !== op.gid0) {
          counts.replaced++
          return
        }

        fchownSync(fd, op.uid1, op.gid1)
        // chown just cleared setuid/setgid: this is why the mode is put back after, never before.
        fchmodSync(fd, op.mode0 & 0o7777)
      } finally {
        closeSync(fd)
      }

      return
    }

    case How.Path: {
      // No second lstat here: the name is resolved in the verified directory (the working
      // directory or /proc/self/fd/<dir>), and lchown never follows a symlink, so whatever the
      // name holds now is inside the data directory. Re-checking would cost a third of the run
      // (measured in bench/remap) to narrow a window that only a process writing into the data
      // directory during a restore could use; undo's inode check skips such an entry.
      lchownSync(op.path, op.uid1, op.gid1)
    }
  }
}
