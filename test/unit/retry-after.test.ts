import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../src/integrations/index.js';

describe('Retry-After, the one parser every adapter uses', () => {
  const now = Date.parse('2026-05-18T06:00:00Z');
  it.each([
    ['120', 120_000],
    [' 7 ', 7_000],
    ['0', 0],
    ['2.128', 2_128],
    ['Mon, 18 May 2026 06:00:30 GMT', 30_000],
    ['Mon, 18 May 2026 05:59:00 GMT', 0],
  ])('%j is %i ms', (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });
  it.each([undefined, '', '   ', 'soon', '-5', '1e3'])('%j is no answer', (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});
