/** Stable error codes. Only http/problem-details.ts decides which HTTP status each one gets. */
export const ErrorCode = {
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  RESOURCE_NOT_FOUND: 'RESOURCE_NOT_FOUND',
  BOOKING_NOT_FOUND: 'BOOKING_NOT_FOUND',
  API_KEY_NOT_FOUND: 'API_KEY_NOT_FOUND',
  WEBHOOK_NOT_FOUND: 'WEBHOOK_NOT_FOUND',
  DELIVERY_NOT_FOUND: 'DELIVERY_NOT_FOUND',
  SLOT_UNAVAILABLE: 'SLOT_UNAVAILABLE',
  BOOKING_CANCELLED: 'BOOKING_CANCELLED',
  BOOKING_NOT_PENDING: 'BOOKING_NOT_PENDING',
  HOLD_NOT_FOUND: 'HOLD_NOT_FOUND',
  HOLD_EXPIRED: 'HOLD_EXPIRED',
  HOLD_MISMATCH: 'HOLD_MISMATCH',
  SLUG_TAKEN: 'SLUG_TAKEN',
  NAME_TAKEN: 'NAME_TAKEN',
  BOOKING_PAGE_NOT_FOUND: 'BOOKING_PAGE_NOT_FOUND',
  SERIES_NOT_FOUND: 'SERIES_NOT_FOUND',
  IDEMPOTENCY_KEY_REUSED: 'IDEMPOTENCY_KEY_REUSED',
  IDEMPOTENCY_IN_PROGRESS: 'IDEMPOTENCY_IN_PROGRESS',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  NOT_READY: 'NOT_READY',
  CALENDAR_NOT_FOUND: 'CALENDAR_NOT_FOUND',
  AMBIGUOUS_CALENDAR: 'AMBIGUOUS_CALENDAR',
  CALENDAR_ALREADY_CONNECTED: 'CALENDAR_ALREADY_CONNECTED',
  CALENDAR_NOT_ACTIVE: 'CALENDAR_NOT_ACTIVE',
  SYNC_IN_PROGRESS: 'SYNC_IN_PROGRESS',
  CONFLICT_NOT_FOUND: 'CONFLICT_NOT_FOUND',
  CONFLICT_ALREADY_RESOLVED: 'CONFLICT_ALREADY_RESOLVED',
  FEED_NOT_FOUND: 'FEED_NOT_FOUND',
  OAUTH_STATE_INVALID: 'OAUTH_STATE_INVALID',
  OAUTH_DENIED: 'OAUTH_DENIED',
  PROVIDER_AUTH_FAILED: 'PROVIDER_AUTH_FAILED',
  PROVIDER_FORBIDDEN: 'PROVIDER_FORBIDDEN',
  PROVIDER_NOT_FOUND: 'PROVIDER_NOT_FOUND',
  PROVIDER_UNAVAILABLE: 'PROVIDER_UNAVAILABLE',
  PROVIDER_TIMEOUT: 'PROVIDER_TIMEOUT',
  PROVIDER_NETWORK: 'PROVIDER_NETWORK',
  PROVIDER_RATE_LIMITED: 'PROVIDER_RATE_LIMITED',
  PROVIDER_QUOTA_EXCEEDED: 'PROVIDER_QUOTA_EXCEEDED',
  PROVIDER_BAD_RESPONSE: 'PROVIDER_BAD_RESPONSE',
  PROVIDER_REJECTED: 'PROVIDER_REJECTED',
  PROVIDER_ERROR: 'PROVIDER_ERROR',
  INTERNAL: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export type FieldError = { field: string; message: string };

export type BookingConflict = {
  resource_id: string;
  start_time: string;
  end_time: string;
  kind: 'booking' | 'calendar_event' | 'outside_schedule';
};

/** One occurrence of a recurring booking that cannot be booked, and why. */
export type OccurrenceConflict = { start_time: string; end_time: string; conflicts: BookingConflict[] };

export class SchedError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: {
      errors?: FieldError[];
      conflicts?: BookingConflict[];
      occurrences?: OccurrenceConflict[];
    } = {},
  ) {
    super(message);
    this.name = 'SchedError';
  }
}

export function validationError(field: string, message: string): SchedError {
  return new SchedError(ErrorCode.VALIDATION_FAILED, `${field}: ${message}`, {
    errors: [{ field, message }],
  });
}

export function validationErrors(errors: FieldError[]): SchedError {
  const first = errors[0];
  const detail =
    errors.length === 1 && first ? `${first.field}: ${first.message}` : `${errors.length} fields are invalid`;
  return new SchedError(ErrorCode.VALIDATION_FAILED, detail, { errors });
}
