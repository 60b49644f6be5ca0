import type { WasmOciError } from '../errors.js';
import { type TimeoutPhase, timeoutError } from './errors.js';
import type { Timeouts } from './types.js';

/**
 * The clocks of one request: a phase timer (connect, handshake, headers, a small body's deadline), an
 * idle timer refreshed by every byte, and for blob bodies a minimum-rate check over a window. Each
 * failure names its phase and host. Everything is cleared by `stop()`, so nothing outlives the request.
 */
export class RequestWatch {
  private phase: NodeJS.Timeout | undefined;
  private idle: NodeJS.Timeout | undefined;
  private rate: NodeJS.Timeout | undefined;
  private windowBytes = 0;
  private stopped = false;

  constructor(
    private readonly url: URL,
    private readonly timeouts: Timeouts,
    private readonly fail: (err: WasmOciError) => void,
  ) {}

  /** Starts (or replaces) the phase timer. */
  startPhase(phase: TimeoutPhase, ms: number): void {
    this.clearPhase();
    if (this.stopped || !(ms > 0) || !Number.isFinite(ms)) return;
    this.phase = setTimeout(() => this.fail(timeoutError(phase, this.url, ms)), ms);
  }

  clearPhase(): void {
    if (this.phase) clearTimeout(this.phase);
    this.phase = undefined;
  }

  /** Fails the request when no byte moves for `idleMs`; `activity()` refreshes it. */
  startIdle(): void {
    const ms = this.timeouts.idleMs;
    if (this.stopped || !(ms > 0) || !Number.isFinite(ms)) return;
    if (this.idle) this.idle.refresh();
    else this.idle = setTimeout(() => this.fail(timeoutError('idle', this.url, ms)), ms);
  }

  /** Stops the idle timer (between a sent request and its answer, the headers timer runs instead). */
  stopIdle(): void {
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
  }

  /** For blob bodies: fails the request when a window passes with fewer bytes than the minimum rate. */
  startRate(): void {
    const { rateWindowMs: window, minBytesPerSecond: rate } = this.timeouts;
    if (this.stopped || this.rate || !(window > 0) || !(rate > 0) || !Number.isFinite(window)) return;
    const minimum = Math.ceil((rate * window) / 1000);
    this.windowBytes = 0;
    this.rate = setInterval(() => {
      const moved = this.windowBytes;
      this.windowBytes = 0;
      if (moved < minimum) {
        this.fail(
          timeoutError(
            'rate',
            this.url,
            window,
            `${moved} bytes in ${Math.round(window / 1000)} s, under ${rate} bytes/s`,
          ),
        );
      }
    }, window);
  }

  /** Bytes moved: refreshes the idle timer and counts toward the rate window. */
  activity(bytes: number): void {
    this.idle?.refresh();
    this.windowBytes += bytes;
  }

  stop(): void {
    this.stopped = true;
    this.clearPhase();
    if (this.idle) clearTimeout(this.idle);
    if (this.rate) clearInterval(this.rate);
    this.idle = undefined;
    this.rate = undefined;
  }
}

/** Adds an abort listener and returns its removal, so no request leaves a listener behind. */
export function onAbort(signal: AbortSignal | undefined, listener: () => void): () => void {
  if (!signal) return () => {};
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}
