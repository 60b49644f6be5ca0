import type { ProgressEvent } from '../copy.js';

/** Transfers smaller than this finish before a bar would be readable. */
const MIN_BAR_BYTES = 4 * 1024 * 1024;
const REDRAW_MS = 100;

function mib(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}

export interface ProgressSink {
  isTTY?: boolean | undefined;
  columns?: number | undefined;
  write(text: string): unknown;
}

/**
 * Renders copy progress as one bar on a terminal (stderr). The library only emits events; whether and
 * how to draw them is decided here, so piped output stays clean.
 */
export function progressBar(sink: ProgressSink, label: string, now: () => number = Date.now) {
  let total = 0;
  let lastDraw = 0;
  let started = 0;
  let drawn = false;
  const draw = (bytes: number, force: boolean) => {
    const t = now();
    if (!force && t - lastDraw < REDRAW_MS) return;
    lastDraw = t;
    const width = Math.max(10, Math.min(40, (sink.columns ?? 80) - 50));
    const ratio = total > 0 ? Math.min(1, bytes / total) : 0;
    const filled = Math.round(ratio * width);
    const seconds = Math.max(0.001, (t - started) / 1000);
    const rate = `${mib(bytes / seconds)} MiB/s`;
    sink.write(
      `\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(ratio * 100)).padStart(3)}% ${mib(bytes)}/${mib(total)} MiB ${rate}\x1b[K`,
    );
    drawn = true;
  };
  return {
    onProgress(event: ProgressEvent): void {
      if (!sink.isTTY) return;
      if (event.type === 'start' && event.desc.size >= MIN_BAR_BYTES) {
        total = event.desc.size;
        started = now();
      } else if (event.type === 'progress' && total > 0 && event.desc.size === total) {
        draw(event.bytes, event.bytes >= total);
      }
    },
    /** Clears the bar so results print on a clean line. */
    finish(): void {
      if (drawn) sink.write('\r\x1b[K');
      drawn = false;
    },
  };
}
