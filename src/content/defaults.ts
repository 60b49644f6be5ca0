/**
 * Defaults the library applies and the CLI's help names, in a module that imports nothing: the command
 * table reads them without loading what uses them.
 */

/** Requests a copy runs at once unless told otherwise (`CopyGraphOptions.concurrency`, `--concurrency`). */
export const DEFAULT_CONCURRENCY = 3;
