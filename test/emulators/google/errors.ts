export type ErrorItem = {
  domain: string;
  reason: string;
  message: string;
  locationType?: string;
  location?: string;
};

const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  412: 'FAILED_PRECONDITION',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
};

/** A Calendar API failure, answered in Google's JSON error envelope. */
export class GoogleApiError extends Error {
  constructor(
    readonly code: number,
    readonly item: ErrorItem,
    readonly headers: Record<string, string> = {},
    /** The top-level message where Google's differs from the item's. */
    readonly topMessage: string = item.message,
  ) {
    super(topMessage);
  }

  toJSON() {
    const status = STATUS_NAMES[this.code];
    return {
      error: {
        code: this.code,
        message: this.topMessage,
        errors: [this.item],
        ...(status === undefined ? {} : { status }),
      },
    };
  }
}

export const errors = {
  badRequest: (message: string, location?: string, reason = 'invalid') =>
    new GoogleApiError(400, {
      domain: 'global',
      reason,
      message,
      ...(location ? { locationType: 'parameter', location } : {}),
    }),
  required: (field: string) =>
    new GoogleApiError(400, { domain: 'global', reason: 'required', message: 'Required', location: field }),
  timeRangeEmpty: () =>
    new GoogleApiError(400, {
      domain: 'calendar',
      reason: 'timeRangeEmpty',
      message: 'The specified time range is empty.',
      locationType: 'parameter',
      location: 'timeMax',
    }),
  syncTokenRestrictions: () =>
    new GoogleApiError(400, {
      domain: 'calendar',
      reason: 'invalid',
      message: 'Sync token cannot be used with other request restrictions.',
      locationType: 'parameter',
      location: 'syncToken',
    }),
  authError: () =>
    new GoogleApiError(
      401,
      {
        domain: 'global',
        reason: 'authError',
        message: 'Invalid Credentials',
        locationType: 'header',
        location: 'Authorization',
      },
      { 'www-authenticate': 'Bearer realm="https://accounts.google.com/", error="invalid_token"' },
    ),
  insufficientPermissions: () =>
    new GoogleApiError(
      403,
      { domain: 'global', reason: 'insufficientPermissions', message: 'Insufficient Permission' },
      {},
      'Request had insufficient authentication scopes.',
    ),
  forbidden: () => new GoogleApiError(403, { domain: 'global', reason: 'forbidden', message: 'Forbidden' }),
  notFound: () => new GoogleApiError(404, { domain: 'global', reason: 'notFound', message: 'Not Found' }),
  duplicate: () =>
    new GoogleApiError(409, {
      domain: 'global',
      reason: 'duplicate',
      message: 'The requested identifier already exists.',
    }),
  deleted: () =>
    new GoogleApiError(410, { domain: 'global', reason: 'deleted', message: 'Resource has been deleted' }),
  fullSyncRequired: () =>
    new GoogleApiError(410, {
      domain: 'calendar',
      reason: 'fullSyncRequired',
      message: 'Sync token is no longer valid, a full sync is required.',
      locationType: 'parameter',
      location: 'syncToken',
    }),
  updatedMinTooLongAgo: () =>
    new GoogleApiError(410, {
      domain: 'calendar',
      reason: 'updatedMinTooLongAgo',
      message: 'The requested minimum modification time lies too far in the past.',
      locationType: 'parameter',
      location: 'updatedMin',
    }),
  conditionNotMet: () =>
    new GoogleApiError(412, {
      domain: 'global',
      reason: 'conditionNotMet',
      message: 'Precondition Failed',
      locationType: 'header',
      location: 'If-Match',
    }),
  rateLimit: (code: 403 | 429, retryAfterSeconds?: number) =>
    new GoogleApiError(
      code,
      { domain: 'usageLimits', reason: 'rateLimitExceeded', message: 'Rate Limit Exceeded' },
      retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) },
    ),
  userRateLimit: () =>
    new GoogleApiError(403, {
      domain: 'usageLimits',
      reason: 'userRateLimitExceeded',
      message: 'User Rate Limit Exceeded',
    }),
  quotaExceeded: () =>
    new GoogleApiError(403, {
      domain: 'usageLimits',
      reason: 'quotaExceeded',
      message: 'Calendar usage limits exceeded.',
    }),
  backendError: () =>
    new GoogleApiError(500, { domain: 'global', reason: 'backendError', message: 'Backend Error' }),
  unavailable: () =>
    new GoogleApiError(503, {
      domain: 'global',
      reason: 'backendError',
      message: 'The service is currently unavailable.',
    }),
};
