import { describe, expect, it } from 'vitest';
import { ProviderErrorCode } from '../../src/integrations/index.js';
import {
  decideFailure,
  MAX_PUSH_ATTEMPTS,
  QUOTA_DELAY_MS,
  STOP_AFTER_FAILURES,
  type FailureDecision,
  type FailureInput,
  type FailureStep,
} from '../../src/calendar/policy/failure-policy.js';

const second = 1000;
const hour = 3_600_000;
const codes = Object.values(ProviderErrorCode);
const steps: FailureStep[] = ['pull', 'push', 'update', 'token', 'watch', 'connect'];
const transient = ['RATE_LIMITED', 'QUOTA_EXCEEDED', 'UNAVAILABLE', 'TIMEOUT', 'NETWORK'] as const;
/** The jitter's two ends and its middle. */
const randoms = [() => 0, () => 0.5, () => 0.999999];

function decide(input: Omit<FailureInput, 'random'>, random = () => 0.5): FailureDecision {
  return decideFailure({ ...input, random });
}

describe('decideFailure: code × step × failures → action', () => {
  type Row = [FailureInput['code'], FailureStep, number, Partial<FailureDecision>];
  const table: Row[] = [
    ['AUTH_FAILED', 'pull', 1, { action: 'reauth', status: 'reauth_required', scope: 'connection' }],
    ['AUTH_FAILED', 'pull', 7, { action: 'reauth', status: 'reauth_required' }],
    ['AUTH_FAILED', 'push', 1, { action: 'reauth', status: 'reauth_required', scope: 'connection' }],
    ['AUTH_FAILED', 'update', 2, { action: 'reauth', status: 'reauth_required' }],
    ['AUTH_FAILED', 'token', 1, { action: 'reauth', status: 'reauth_required' }],
    ['AUTH_FAILED', 'watch', 1, { action: 'retry', scope: 'channel', announce: 'never' }],
    ['CURSOR_INVALID', 'pull', 1, { action: 'reset_cursor', delayMs: 0, announce: 'never' }],
    ['CURSOR_INVALID', 'pull', 2, { action: 'retry', status: 'error', scope: 'connection' }],
    ['NOT_FOUND', 'pull', 1, { action: 'retry', status: 'error', announce: 'never' }],
    ['NOT_FOUND', 'pull', STOP_AFTER_FAILURES - 1, { action: 'retry', status: 'error' }],
    ['NOT_FOUND', 'pull', STOP_AFTER_FAILURES, { action: 'stop', status: 'error', announce: 'now' }],
    ['NOT_FOUND', 'pull', STOP_AFTER_FAILURES + 1, { action: 'stop', status: 'error', announce: 'never' }],
    ['FORBIDDEN', 'pull', STOP_AFTER_FAILURES, { action: 'stop', status: 'error', announce: 'now' }],
    ['URL_REFUSED', 'pull', STOP_AFTER_FAILURES, { action: 'stop', status: 'error' }],
    ['NOT_FOUND', 'token', STOP_AFTER_FAILURES + 3, { action: 'retry', status: 'error' }],
    ['FORBIDDEN', 'token', STOP_AFTER_FAILURES + 3, { action: 'retry', status: 'error' }],
    ['REJECTED', 'pull', 9, { action: 'retry', status: 'error', announce: 'on_entry' }],
    ['BAD_RESPONSE', 'pull', 1, { action: 'retry', status: 'error', announce: 'on_entry' }],
    [null, 'pull', 1, { action: 'retry', status: 'error', scope: 'connection' }],
    ['PRECONDITION_FAILED', 'update', 1, { action: 'settle', scope: 'booking' }],
    ['NOT_FOUND', 'update', 1, { action: 'settle', scope: 'booking' }],
    ['NOT_FOUND', 'push', 1, { action: 'retry', scope: 'booking' }],
    ['NOT_FOUND', 'push', MAX_PUSH_ATTEMPTS - 1, { action: 'retry', scope: 'booking' }],
    ['NOT_FOUND', 'push', MAX_PUSH_ATTEMPTS, { action: 'stop', scope: 'booking' }],
    ['PRECONDITION_FAILED', 'push', 1, { action: 'retry', scope: 'booking' }],
    ['BAD_RESPONSE', 'update', MAX_PUSH_ATTEMPTS, { action: 'stop', scope: 'booking' }],
    ['REJECTED', 'push', 1, { action: 'stop', scope: 'booking', announce: 'never' }],
    ['REJECTED', 'update', 1, { action: 'stop', scope: 'booking' }],
    [null, 'push', 1, { action: 'retry', scope: 'connection', status: 'error' }],
    ['UNAVAILABLE', 'push', 1, { action: 'retry', scope: 'connection', status: 'error' }],
    ['TIMEOUT', 'update', 1, { action: 'retry', scope: 'connection' }],
  ];
  it.each(table)('%s at %s, failure %i', (code, step, failures, expected) => {
    expect(decide({ code, step, failures })).toMatchObject(expected);
  });

  it('a booking-scoped answer leaves the connection alone', () => {
    for (const code of ['REJECTED', 'NOT_FOUND', 'FORBIDDEN', 'BAD_RESPONSE'] as const) {
      const decision = decide({ code, step: 'push', failures: 1 });
      expect(decision.scope).toBe('booking');
      expect(decision.status).toBeUndefined();
      expect(decision.delayMs).toBeUndefined();
    }
  });

  it('a watch failure never touches the connection, whatever the code', () => {
    for (const code of [...codes, null]) {
      for (const failures of [1, 5, 50]) {
        const decision = decide({ code, step: 'watch', failures });
        expect(decision).toEqual({ action: 'retry', scope: 'channel', announce: 'never' });
      }
    }
  });

  it('at connect every failure is refused at once and nothing is retried', () => {
    for (const code of [...codes, null]) {
      expect(decide({ code, step: 'connect', failures: 1 })).toMatchObject({ action: 'stop' });
      expect(decide({ code, step: 'connect', failures: 1 }).delayMs).toBeUndefined();
    }
  });

  it('refused credentials and a stopped calendar have no retry time; every retry of the connection has one', () => {
    for (const code of [...codes, null]) {
      for (const step of steps) {
        for (const failures of [1, 2, 3, 4, 10]) {
          const decision = decide({ code, step, failures });
          if (
            decision.action === 'reauth' ||
            (decision.action === 'stop' && decision.scope === 'connection')
          ) {
            expect(decision.delayMs, `${code} ${step} ${failures}`).toBeUndefined();
          }
          if (decision.action === 'retry' && decision.scope === 'connection') {
            expect(decision.delayMs, `${code} ${step} ${failures}`).toBeGreaterThan(0);
          }
        }
      }
    }
  });

  it('a stop for a calendar that is gone says so and what to do', () => {
    const gone = decide({ code: 'NOT_FOUND', step: 'pull', failures: STOP_AFTER_FAILURES });
    expect(gone.message).toMatch(/no longer exists/);
    expect(gone.message).toMatch(/reconnect/);
    const closed = decide({ code: 'FORBIDDEN', step: 'pull', failures: STOP_AFTER_FAILURES });
    expect(closed.message).toMatch(/lost access/);
    expect(closed.message).toMatch(/reconnect/);
    // Retries before the stop keep the provider's own words.
    expect(decide({ code: 'NOT_FOUND', step: 'pull', failures: 1 }).message).toBeUndefined();
  });
});

describe('decideFailure: delay bounds', () => {
  it.each(transient.filter((code) => code !== 'QUOTA_EXCEEDED'))(
    '%s backs off from 30 s, doubling up to 1 h, ±20 %%',
    (code) => {
      for (const step of ['pull', 'push', 'token'] as const) {
        for (const random of randoms) {
          const at = (failures: number) => decide({ code, step, failures }, random).delayMs!;
          expect(at(1)).toBeGreaterThanOrEqual(24 * second);
          expect(at(1)).toBeLessThanOrEqual(36 * second);
          expect(at(2)).toBeGreaterThanOrEqual(48 * second);
          expect(at(2)).toBeLessThanOrEqual(72 * second);
          for (const failures of [8, 12, 40]) {
            expect(at(failures)).toBeGreaterThanOrEqual(0.8 * hour);
            expect(at(failures)).toBeLessThanOrEqual(1.2 * hour);
          }
        }
      }
    },
  );

  it('the jitter spreads connections that failed together', () => {
    const low = decide({ code: 'UNAVAILABLE', step: 'pull', failures: 3 }, () => 0).delayMs!;
    const high = decide({ code: 'UNAVAILABLE', step: 'pull', failures: 3 }, () => 0.999).delayMs!;
    expect(high - low).toBeGreaterThan(0.35 * 120 * second);
  });

  it('Retry-After is honoured when it asks for longer than the backoff, ignored when shorter', () => {
    const asked = 10 * 60 * second;
    for (const code of ['RATE_LIMITED', 'UNAVAILABLE'] as const) {
      expect(decide({ code, step: 'pull', failures: 1, retryAfterMs: asked }).delayMs).toBe(asked);
      const shorter = decide({ code, step: 'pull', failures: 1, retryAfterMs: second }).delayMs!;
      expect(shorter).toBeGreaterThanOrEqual(24 * second);
    }
  });

  it('a spent quota waits at least an hour, longer when the provider asks', () => {
    for (const random of randoms) {
      expect(
        decide({ code: 'QUOTA_EXCEEDED', step: 'pull', failures: 1 }, random).delayMs,
      ).toBeGreaterThanOrEqual(QUOTA_DELAY_MS);
    }
    const asked = 5 * hour;
    expect(decide({ code: 'QUOTA_EXCEEDED', step: 'push', failures: 1, retryAfterMs: asked }).delayMs).toBe(
      asked,
    );
  });

  it('retries of a calendar that seems gone use the same backoff', () => {
    const gone = decide({ code: 'NOT_FOUND', step: 'pull', failures: 2 }).delayMs!;
    const down = decide({ code: 'UNAVAILABLE', step: 'pull', failures: 2 }).delayMs!;
    expect(gone).toBe(down);
  });
});
