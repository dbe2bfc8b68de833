// NODE_OPTIONS="--import <this file>" HA_TRACE_IMPORTS=<file>: every module URL the process
// resolves is appended to <file>, so a test can prove what a command did or did not load.
import {register} from 'node:module'

register(new URL('hooks.mjs', import.meta.url))
