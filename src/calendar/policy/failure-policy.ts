import type { ProviderErrorCode } from '../../integrations/index.js';
import { syncRetryDelayMs } from './sync-decisions.js';

/**
 * What a failed provider call means for a calendar connection. Pure: the engine says what failed,
 * where, and how often in a row; it carries out the answer.
 *
 * | code                                     | step         | answer                                                     |
 * | ---------------------------------------- | ------------ | ---------------------------------------------------------- |
 * | AUTH_FAILED                              | all but watch, connect | reauth: status reauth_required, no automatic retry |
 * | RATE_LIMITED                             | "            | retry after max(Retry-After, backoff)                      |
 * | QUOTA_EXCEEDED                           | "            | retry after max(Retry-After, backoff, 1 h)                 |
 * | UNAVAILABLE TIMEOUT NETWORK              | "            | retry after max(Retry-After, backoff): the sync ends       |
 * | CURSOR_INVALID                           | pull         | 1st in a sync: reset_cursor (full listing now); again: retry |
 * | NOT_FOUND FORBIDDEN URL_REFUSED          | pull         | retry with backoff until the 3rd failed sync in a row, then  |
 * |                                          |              | stop: status error, a clear message, no automatic retry,   |
 * |                                          |              | announced once (at that stop, not at the hiccups before)   |
 * | any other, or not the provider's failure | pull token   | retry with backoff                                         |
 * | PRECONDITION_FAILED NOT_FOUND            | update       | settle: the event changed or went at the provider          |
 * | REJECTED                                 | push update  | stop this booking's push, its error kept; others go on     |
 * | any other provider failure               | push update  | this booking again at the next syncs; stop at 5 attempts   |
 * | any                                      | watch        | retry at the next sync; the sync goes on, polling continues |
 * | any                                      | connect      | stop: refused at once, nothing kept                        |
 *
 * Backoff is `syncRetryDelayMs`: 30 s doubling to 1 h, spread ±20 %. "Retry" of the connection sets
 * status error; the failure webhook fires on the way into it, not on every retry. A stopped
 * connection is tried again only by a manual sync or a change of its settings; success clears it.
 * `push` is a booking's create or delete, `update` its conditional write of an event it already has.
 * At `watch`, even AUTH_FAILED is not taken as final: the pull before it just worked with the same
 * credentials, and if they are gone the next pull says so.
 */
export type FailureStep = 'pull' | 'push' | 'update' | 'token' | 'watch' | 'connect';

export type FailureInput = {
  /** The provider's failure code; null when the failure is not the provider's (a database error). */
  code: ProviderErrorCode | null;
  step: FailureStep;
  /**
   * Consecutive failures, this one included: of the connection's syncs (pull, token), of one
   * booking's push (push, update), or refusals of the cursor within one sync (CURSOR_INVALID).
   */
  failures: number;
  /** What the provider asked for (Retry-After). */
  retryAfterMs?: number | undefined;
  random?: () => number;
};

export type FailureDecision = {
  /**
   * retry: later (`delayMs` for the connection; for one booking, at the next sync); reset_cursor:
   * drop the cursor and list everything now; reauth: wait for new credentials; stop: no automatic
   * retry; settle: compare with the provider's current version of the event.
   */
  action: 'retry' | 'reset_cursor' | 'reauth' | 'stop' | 'settle';
  /** What the failure is about: the whole connection (the sync fails), one booking, or the push channel. */
  scope: 'connection' | 'booking' | 'channel';
  /** For the connection: how long until the worker tries again; absent when it does not. */
  delayMs?: number;
  /** The connection's status; absent when it does not change. */
  status?: 'error' | 'reauth_required';
  /** Said to the user in place of the bare provider message. */
  message?: string;
  /**
   * When the failure webhook fires: on_entry when the connection enters this status from another,
   * now (this is the first stop), or never.
   */
  announce: 'on_entry' | 'now' | 'never';
};

/** Tries a calendar that seems gone or closed gets before the sync stops: one answer can be a hiccup. */
export const STOP_AFTER_FAILURES = 3;
/** A booking's write that keeps failing (not transiently) is given up after this many attempts. */
export const MAX_PUSH_ATTEMPTS = 5;
/** A spent quota is not tried again sooner than this. */
export const QUOTA_DELAY_MS = 3_600_000;

const TRANSIENT: ReadonlySet<ProviderErrorCode> = new Set([
  'RATE_LIMITED',
  'QUOTA_EXCEEDED',
  'UNAVAILABLE',
  'TIMEOUT',
  'NETWORK',
]);

const GONE_MESSAGES: Partial<Record<ProviderErrorCode, string>> = {
  NOT_FOUND:
    'the calendar no longer exists at the provider, so synchronization stopped; reconnect it or connect another calendar',
  FORBIDDEN:
    'Sched lost access to the calendar, so synchronization stopped; reconnect it with access granted',
  URL_REFUSED: "this server's outbound rules refuse the calendar's address, so synchronization stopped",
};

function backoff(input: FailureInput): number {
  const base = syncRetryDelayMs(Math.max(1, input.failures), input.random);
  // A 5xx may carry Retry-After too; it is honoured like a 429's.
  const delay = Math.max(input.retryAfterMs ?? 0, base);
  return input.code === 'QUOTA_EXCEEDED' ? Math.max(delay, QUOTA_DELAY_MS) : delay;
}

function retryConnection(input: FailureInput): FailureDecision {
  return {
    action: 'retry',
    scope: 'connection',
    delayMs: backoff(input),
    status: 'error',
    announce: 'on_entry',
  };
}

export function decideFailure(input: FailureInput): FailureDecision {
  const { code, step, failures } = input;
  if (step === 'connect') return { action: 'stop', scope: 'connection', announce: 'never' };
  if (step === 'watch') return { action: 'retry', scope: 'channel', announce: 'never' };
  if (code === 'AUTH_FAILED') {
    return { action: 'reauth', scope: 'connection', status: 'reauth_required', announce: 'on_entry' };
  }
  if (code !== null && TRANSIENT.has(code)) return retryConnection(input);
  if (step === 'push' || step === 'update') {
    if (step === 'update' && (code === 'PRECONDITION_FAILED' || code === 'NOT_FOUND')) {
      return { action: 'settle', scope: 'booking', announce: 'never' };
    }
    // Not a provider failure (a database error) fails the whole sync, retried with backoff.
    if (code === null) return retryConnection(input);
    const stop = code === 'REJECTED' || failures >= MAX_PUSH_ATTEMPTS;
    return { action: stop ? 'stop' : 'retry', scope: 'booking', announce: 'never' };
  }
  if (step === 'pull' && code === 'CURSOR_INVALID' && failures <= 1) {
    return { action: 'reset_cursor', scope: 'connection', delayMs: 0, announce: 'never' };
  }
  const gone = step === 'pull' && code !== null ? GONE_MESSAGES[code] : undefined;
  if (gone !== undefined) {
    if (failures < STOP_AFTER_FAILURES) return { ...retryConnection(input), announce: 'never' };
    return {
      action: 'stop',
      scope: 'connection',
      status: 'error',
      message: gone,
      announce: failures === STOP_AFTER_FAILURES ? 'now' : 'never',
    };
  }
  return retryConnection(input);
}
