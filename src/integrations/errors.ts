/**
 * The closed set of ways a provider call fails. Adapters map their protocol's answers onto it;
 * calendar/policy/failure-policy.ts alone decides what each means for a sync (retry, reset the
 * cursor, ask for new credentials, stop).
 */
export const ProviderErrorCode = {
  /** Credentials refused (401, invalid_grant): the connection needs new ones; retrying will not help. */
  AUTH_FAILED: 'AUTH_FAILED',
  /** Authenticated but not allowed (403 on the calendar). */
  FORBIDDEN: 'FORBIDDEN',
  /** The calendar or object does not exist. */
  NOT_FOUND: 'NOT_FOUND',
  /** A conditional write lost: the object changed since we read it (412). */
  PRECONDITION_FAILED: 'PRECONDITION_FAILED',
  /** The incremental cursor was refused (RFC 6578 valid-sync-token, Google/Graph 410). */
  CURSOR_INVALID: 'CURSOR_INVALID',
  /** Slow down (429, Google rateLimitExceeded); `retryAfterMs` when the provider said. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A daily or project quota is spent; retry much later. */
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  /** 5xx from the provider. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** No answer in time. */
  TIMEOUT: 'TIMEOUT',
  /** Could not connect (DNS, refused, reset). */
  NETWORK: 'NETWORK',
  /** The URL is refused by the outbound guard (internal address, bad scheme). */
  URL_REFUSED: 'URL_REFUSED',
  /** The answer is not what the protocol promises (not a calendar, unparsable XML, too large). */
  BAD_RESPONSE: 'BAD_RESPONSE',
  /** The provider refused what we sent (400, invalid calendar data). */
  REJECTED: 'REJECTED',
} as const;
export type ProviderErrorCode = (typeof ProviderErrorCode)[keyof typeof ProviderErrorCode];

export class ProviderError extends Error {
  constructor(
    readonly code: ProviderErrorCode,
    message: string,
    readonly details: { status?: number; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.name = 'ProviderError';
  }

  /** Whether trying the same call again later can succeed. */
  get transient(): boolean {
    return (
      this.code === 'RATE_LIMITED' ||
      this.code === 'QUOTA_EXCEEDED' ||
      this.code === 'UNAVAILABLE' ||
      this.code === 'TIMEOUT' ||
      this.code === 'NETWORK'
    );
  }
}
