const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * Waits after the 1st, 2nd, … failed attempt. Ten attempts spread over about three days (3.1 days
 * before jitter): quick retries for a blip, then hours apart for an outage.
 */
export const RETRY_DELAYS_MS: readonly number[] = [
  5 * SECOND,
  5 * MINUTE,
  30 * MINUTE,
  2 * HOUR,
  5 * HOUR,
  10 * HOUR,
  14 * HOUR,
  20 * HOUR,
  24 * HOUR,
];

/** ±20 %, so receivers coming back from an outage are not hit by every retry at once. */
export const RETRY_JITTER = 0.2;

/** A subscription whose deliveries have failed without a success for this long is disabled. */
export const DISABLE_AFTER_FAILING_MS = 5 * 24 * HOUR;

/**
 * When to try again after `attemptsMade` attempts that all failed; null once they are used up.
 * `random` is in [0, 1), passed in so the schedule is testable.
 */
export function nextRetryDelay(attemptsMade: number, random: number): number | null {
  const base = RETRY_DELAYS_MS[attemptsMade - 1];
  if (base === undefined) return null;
  return Math.round(base * (1 - RETRY_JITTER + 2 * RETRY_JITTER * random));
}

export type DeliveryOutcome =
  { kind: 'delivered' } | { kind: 'gone' } | { kind: 'failed'; retryInMs: number } | { kind: 'exhausted' };

/**
 * What a response means. Any 2xx is success; 410 means the receiver wants no more; everything else,
 * redirects included (they are never followed), is a failure to retry.
 */
export function classifyAttempt(
  statusCode: number | null,
  attemptsMade: number,
  random: number,
): DeliveryOutcome {
  if (statusCode !== null && statusCode >= 200 && statusCode < 300) return { kind: 'delivered' };
  if (statusCode === 410) return { kind: 'gone' };
  const delay = nextRetryDelay(attemptsMade, random);
  return delay === null ? { kind: 'exhausted' } : { kind: 'failed', retryInMs: delay };
}
