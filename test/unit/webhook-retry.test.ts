import { describe, expect, it } from 'vitest';
import { classifyAttempt, nextRetryDelay, RETRY_DELAYS_MS } from '../../src/domain/webhook-retry.js';

describe('webhook retry schedule', () => {
  it('spreads ten attempts over about three days', () => {
    const total = RETRY_DELAYS_MS.reduce((sum, delay) => sum + delay, 0);
    expect(RETRY_DELAYS_MS).toHaveLength(9);
    expect(total / 86_400_000).toBeGreaterThan(2.8);
    expect(total / 86_400_000).toBeLessThan(3.3);
  });

  it('grows the wait after each failure and stops after the last', () => {
    expect(nextRetryDelay(1, 0.5)).toBe(5_000);
    expect(nextRetryDelay(2, 0.5)).toBe(300_000);
    expect(nextRetryDelay(9, 0.5)).toBe(86_400_000);
    expect(nextRetryDelay(10, 0.5)).toBeNull();
  });

  it('jitters by at most 20 % either way', () => {
    expect(nextRetryDelay(3, 0)).toBe(1_440_000);
    expect(nextRetryDelay(3, 0.999999)).toBeCloseTo(2_160_000, -2);
  });

  it('counts any 2xx as delivered, 410 as gone and redirects, 4xx, 5xx and no answer as failures', () => {
    expect(classifyAttempt(200, 1, 0.5)).toEqual({ kind: 'delivered' });
    expect(classifyAttempt(204, 1, 0.5)).toEqual({ kind: 'delivered' });
    expect(classifyAttempt(299, 1, 0.5)).toEqual({ kind: 'delivered' });
    expect(classifyAttempt(410, 1, 0.5)).toEqual({ kind: 'gone' });
    for (const status of [301, 302, 307, 400, 404, 500, 503, null]) {
      expect(classifyAttempt(status, 1, 0.5)).toEqual({ kind: 'failed', retryInMs: 5_000 });
    }
    expect(classifyAttempt(500, 10, 0.5)).toEqual({ kind: 'exhausted' });
  });
});
