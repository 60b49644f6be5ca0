import { sleep } from '../errors.js';

/**
 * How transient failures are retried: jittered exponential backoff, a number of tries and a total time
 * budget. The clock, the sleep and the jitter's randomness come in as parameters, so tests run retries
 * without real waits and with known delays.
 */
export interface RetryPolicy {
  /** Tries in all, the first included, for a request that made no progress. */
  attempts: number;
  /** First backoff; doubled each time, with ±50 % jitter. */
  baseDelayMs: number;
  /** No retry starts once this much time has passed since the first try. */
  budgetMs: number;
  /** Upper bound for one wait, `Retry-After` included. */
  maxDelayMs: number;
  /** Resumptions of one blob transfer that keeps making progress (each from where it stopped). */
  resumes: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 4,
  baseDelayMs: 250,
  budgetMs: 120_000,
  maxDelayMs: 20_000,
  resumes: 10,
};

export interface RetryClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** A number in [0, 1): the jitter. */
  random(): number;
}

export const SYSTEM_CLOCK: RetryClock = {
  now: () => Date.now(),
  sleep,
  random: () => Math.random(),
};

/** One operation's retry state: how many tries so far, since when. */
export class RetryBudget {
  private tries = 0;
  private readonly started: number;

  constructor(
    private readonly policy: RetryPolicy,
    private readonly clock: RetryClock,
  ) {
    this.started = clock.now();
  }

  /** Counts a failed try; true when another may start (within tries and time). */
  failed(limit = this.policy.attempts): boolean {
    this.tries++;
    return this.tries < limit && this.clock.now() - this.started < this.policy.budgetMs;
  }

  /** Time since the first try. */
  elapsed(): number {
    return this.clock.now() - this.started;
  }

  /** Waits before the next try: `retryAfterMs` when the server said so, else jittered backoff. */
  async wait(signal: AbortSignal | undefined, retryAfterMs?: number): Promise<void> {
    const exponential = this.policy.baseDelayMs * 2 ** Math.max(0, this.tries - 1);
    const jittered = exponential * (0.5 + this.clock.random());
    const ms = Math.max(0, Math.min(this.policy.maxDelayMs, retryAfterMs ?? jittered));
    await this.clock.sleep(ms, signal);
  }
}
