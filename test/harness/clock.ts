import type { RetryClock } from '../../src/transport/retry.js';

/**
 * A retry clock that records what it was asked to sleep and returns at once (its time moves by the
 * sleeps), with the jitter at its middle: retries in tests wait for nothing real.
 */
export function fakeClock(): RetryClock & { sleeps: number[] } {
  let t = 0;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: async (ms) => {
      sleeps.push(ms);
      t += ms;
    },
    random: () => 0.5,
  };
}
