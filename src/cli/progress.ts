import type { ProgressEvent } from '../copy.js';
import type { OptionValues } from './args.js';
import { lineSafe } from './output.js';

/** Transfers smaller than this finish before a bar would be readable. */
const MIN_BAR_BYTES = 4 * 1024 * 1024;
const REDRAW_MS = 100;
/** Manifests and indexes (OCI and Docker): the summary counts blobs only. */
const MANIFEST_TYPES =
  /^application\/vnd\.(oci\.image\.(manifest|index)\.v1|docker\.distribution\.manifest\.(v2|list\.v2))\+json$/;
/** The widest bar drawn, in characters between the brackets. */
const MAX_BAR = 40;

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

export interface ProgressSink {
  isTTY?: boolean | undefined;
  columns?: number | undefined;
  write(text: string): unknown;
}

/** What a command's transfers show on stderr. */
export interface ProgressSettings {
  /** The bar, on a terminal, for blobs of 4 MiB or more (off with --no-progress, -q or --json). */
  bar: boolean;
  /** One line per blob (`Exists`, `Mounted`, `Uploaded`, `Downloaded`, `Cached`) and a summary (-v). */
  lines: boolean;
  /** Without lines: a note when blobs were skipped (a re-push), unless -q. */
  notes: boolean;
  /** Which way the bytes go: `up` to a registry or layout (push, copy), `down` to a file (pull). */
  direction: 'up' | 'down';
}

/** The settings the options ask for: -q and --json draw nothing, -v adds a line per blob. */
export function progressSettings(
  options: OptionValues,
  direction: ProgressSettings['direction'],
): ProgressSettings {
  const quiet = options.quiet === true;
  const json = options.json === true;
  return {
    bar: !quiet && !json && options['no-progress'] !== true,
    lines: !quiet && (options.verbose === true || options.debug === true),
    notes: !quiet && !json,
    direction,
  };
}

/**
 * One bar line that fits `columns` without wrapping: the parts that do not fit are dropped, rate
 * first, then sizes, then the bar; the label is cut last. Always shorter than `columns` (a line that
 * reaches the last column wraps on some terminals).
 */
export function barLine(
  label: string,
  bytes: number,
  total: number,
  seconds: number,
  columns: number,
): string {
  const room = Math.max(1, columns - 1);
  const ratio = total > 0 ? Math.min(1, bytes / total) : 0;
  const percent = `${String(Math.round(ratio * 100)).padStart(3)}%`;
  const sizes = `${mib(bytes)}/${mib(total)} MiB`;
  const rate = `${mib(bytes / Math.max(0.001, seconds))} MiB/s`;
  const bar = (width: number) => {
    const filled = Math.round(ratio * width);
    return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  };
  for (const tail of [[percent, sizes, rate], [percent, sizes], [percent]]) {
    const fixed = `${label}  ${tail.join(' ')}`.length + 2;
    const width = Math.min(MAX_BAR, room - fixed);
    if (width >= 10) return `${label} ${bar(width)} ${tail.join(' ')}`;
  }
  for (const tail of [[percent, sizes], [percent]]) {
    const line = `${label} ${tail.join(' ')}`;
    if (line.length <= room) return line;
  }
  return `${label} ${percent}`.slice(0, room);
}

function blobLine(verb: string, event: ProgressEvent): string {
  const { desc } = event;
  return `${verb.padEnd(10)} ${lineSafe(desc.digest)} (${desc.size} bytes, ${lineSafe(desc.mediaType)})\n`;
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

/**
 * Renders copy progress on stderr: a bar on a terminal, per-blob lines with -v, and a summary. The
 * library only emits events; whether and how to show them is decided here, so piped output stays clean.
 */
export function progressBar(
  sink: ProgressSink,
  label: string,
  settings: ProgressSettings = { bar: true, lines: false, notes: false, direction: 'up' },
  now: () => number = Date.now,
) {
  let total = 0;
  let lastDraw = 0;
  let started = 0;
  let drawn = false;
  let lastBytes = 0;
  const cached = new Set<string>();
  /**
   * What happened to each blob, by digest; a later state wins over an earlier one (a push uploads the
   * module while packing, and the copy that follows finds it there: that is one upload, not a skip).
   */
  const states = new Map<string, { state: 'sent' | 'cached' | 'mounted' | 'skipped'; size: number }>();
  const RANK = { skipped: 0, mounted: 1, cached: 2, sent: 2 } as const;
  const record = (event: ProgressEvent, state: keyof typeof RANK): boolean => {
    const known = states.get(event.desc.digest);
    if (known && RANK[known.state] >= RANK[state]) return false;
    states.set(event.desc.digest, { state, size: event.desc.size });
    return true;
  };
  const clear = () => {
    if (drawn) sink.write('\r\x1b[K');
    drawn = false;
  };
  const draw = (bytes: number, force: boolean) => {
    const t = now();
    if (!force && t - lastDraw < REDRAW_MS) return;
    lastDraw = t;
    lastBytes = bytes;
    const line = barLine(label, bytes, total, (t - started) / 1000, sink.columns ?? 80);
    sink.write(`\r${line}\x1b[K`);
    drawn = true;
  };
  const line = (text: string) => {
    const redraw = drawn;
    clear();
    sink.write(text);
    if (redraw) draw(lastBytes, true);
  };
  /** Manifests get lines too, but the summary counts blobs. */
  const manifests = new Set<string>();
  return {
    onProgress(event: ProgressEvent): void {
      if (event.type === 'cached') cached.add(event.desc.digest);
      if (MANIFEST_TYPES.test(event.desc.mediaType)) manifests.add(event.desc.digest);
      let verb: string | undefined;
      if (event.type === 'skip' && record(event, 'skipped')) verb = 'Exists';
      if (event.type === 'mount' && record(event, 'mounted')) verb = 'Mounted';
      if (event.type === 'done') {
        const fromCache = cached.has(event.desc.digest);
        if (record(event, fromCache ? 'cached' : 'sent')) {
          verb = fromCache ? 'Cached' : settings.direction === 'up' ? 'Uploaded' : 'Downloaded';
        }
      }
      if (settings.lines && verb) line(blobLine(verb, event));
      if (!settings.bar || !sink.isTTY) return;
      if (event.type === 'start' && event.desc.size >= MIN_BAR_BYTES) {
        total = event.desc.size;
        started = now();
      } else if (event.type === 'progress' && total > 0 && event.desc.size === total) {
        draw(event.bytes, event.bytes >= total);
      }
    },
    /** Clears the bar so results print on a clean line. */
    finish(): void {
      clear();
    },
    /**
     * After a successful transfer: with -v, what was sent, skipped, mounted or read from the cache;
     * else, when blobs were skipped, a note saying so (a re-push is not silent about it).
     */
    summary(): void {
      clear();
      const c = { sent: 0, sentBlobs: 0, skipped: 0, skippedBytes: 0, mounted: 0, cachedBytes: 0 };
      for (const [, { state, size }] of [...states].filter(([digest]) => !manifests.has(digest))) {
        if (state === 'sent') {
          c.sent += size;
          c.sentBlobs++;
        } else if (state === 'skipped') {
          c.skipped++;
          c.skippedBytes += size;
        } else if (state === 'mounted') c.mounted++;
        else c.cachedBytes += size;
      }
      if (settings.direction === 'down') {
        if (settings.lines) {
          sink.write(
            `Received ${c.sent} bytes${c.cachedBytes ? `, ${c.cachedBytes} bytes from the cache` : ''}\n`,
          );
        }
        return;
      }
      const skipped = [
        ...(c.skipped ? [`${plural(c.skipped, 'blob')} (${c.skippedBytes} bytes) already there`] : []),
        ...(c.mounted ? [`${plural(c.mounted, 'blob')} mounted`] : []),
      ];
      if (settings.lines || (settings.notes && skipped.length)) {
        sink.write(
          `Sent ${c.sent} bytes in ${plural(c.sentBlobs, 'blob')}${skipped.length ? `; ${skipped.join(', ')}` : ''}\n`,
        );
      }
    },
  };
}

/**
 * Runs a transfer with its progress on `sink`: the bar is cleared however it ends, and the summary
 * (with -v, or the note of a re-push) follows a transfer that succeeded.
 */
export async function showingProgress<T>(
  sink: ProgressSink,
  label: string,
  settings: ProgressSettings,
  run: (bar: ReturnType<typeof progressBar>) => Promise<T>,
): Promise<T> {
  const bar = progressBar(sink, label, settings);
  let result: T;
  try {
    result = await run(bar);
  } finally {
    bar.finish();
  }
  bar.summary();
  return result;
}
