/**
 * Retry-After (RFC 9110 §10.2.3) in milliseconds: delay-seconds, also fractional as Graph's throttling
 * answers send them ("2.128"), or an HTTP date measured from `now`. Undefined when absent or
 * unreadable; never negative.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  // Every HTTP-date form (IMF-fixdate, RFC 850, asctime) starts with the day's name.
  if (!/^[A-Za-z]{3}/.test(trimmed)) return undefined;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
