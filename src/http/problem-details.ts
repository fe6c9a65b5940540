import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, type FieldError, SchedError } from '../services/errors.js';

const STATUS: Record<ErrorCode, number> = {
  VALIDATION_FAILED: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  RESOURCE_NOT_FOUND: 404,
  BOOKING_NOT_FOUND: 404,
  API_KEY_NOT_FOUND: 404,
  WEBHOOK_NOT_FOUND: 404,
  DELIVERY_NOT_FOUND: 404,
  SLOT_UNAVAILABLE: 409,
  BOOKING_CANCELLED: 409,
  BOOKING_NOT_PENDING: 409,
  HOLD_NOT_FOUND: 404,
  HOLD_EXPIRED: 409,
  HOLD_MISMATCH: 409,
  SLUG_TAKEN: 409,
  NAME_TAKEN: 409,
  BOOKING_PAGE_NOT_FOUND: 404,
  SERIES_NOT_FOUND: 404,
  IDEMPOTENCY_IN_PROGRESS: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  IDEMPOTENCY_KEY_REUSED: 422,
  NOT_READY: 503,
  CALENDAR_NOT_FOUND: 404,
  AMBIGUOUS_CALENDAR: 409,
  CALENDAR_ALREADY_CONNECTED: 409,
  CALENDAR_NOT_ACTIVE: 409,
  SYNC_IN_PROGRESS: 409,
  CONFLICT_NOT_FOUND: 404,
  CONFLICT_ALREADY_RESOLVED: 409,
  FEED_NOT_FOUND: 404,
  OAUTH_STATE_INVALID: 400,
  OAUTH_DENIED: 400,
  PROVIDER_AUTH_FAILED: 502,
  PROVIDER_FORBIDDEN: 502,
  PROVIDER_NOT_FOUND: 502,
  PROVIDER_UNAVAILABLE: 502,
  PROVIDER_TIMEOUT: 502,
  PROVIDER_NETWORK: 502,
  PROVIDER_RATE_LIMITED: 502,
  PROVIDER_QUOTA_EXCEEDED: 502,
  PROVIDER_BAD_RESPONSE: 502,
  PROVIDER_REJECTED: 502,
  PROVIDER_ERROR: 502,
  INTERNAL: 500,
};

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export type ProblemBody = {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  errors?: FieldError[];
  conflicts?: unknown[];
  occurrences?: unknown[];
};

export function problemFor(error: SchedError): ProblemBody {
  const status = STATUS[error.code];
  return {
    type: `https://sched.dev/problems/${error.code.toLowerCase().replaceAll('_', '-')}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail: error.message,
    code: error.code,
    ...(error.extra.errors ? { errors: error.extra.errors } : {}),
    ...(error.extra.conflicts ? { conflicts: error.extra.conflicts } : {}),
    ...(error.extra.occurrences ? { occurrences: error.extra.occurrences } : {}),
  };
}

export function sendProblem(reply: FastifyReply, error: SchedError): FastifyReply {
  const body = problemFor(error);
  return reply.code(body.status).type('application/problem+json').send(body);
}

type AjvError = {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
};

/** '/attendees/0/email' in the body → 'attendees[0].email'; query and params keep their plain names. */
function fieldName(path: string | undefined, extra?: string): string {
  const parts = (path ?? '')
    .split('/')
    .filter(Boolean)
    .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (extra) parts.push(extra);
  let name = '';
  for (const part of parts) name += /^\d+$/.test(part) ? `[${part}]` : name ? `.${part}` : part;
  return name || 'body';
}

const FORMAT_MESSAGES: Record<string, string> = {
  instant:
    'must be an RFC 3339 time with an offset, such as 2026-05-18T10:00:00Z or 2026-05-18T12:00:00+02:00',
  'time-zone': 'must be an IANA time zone name such as Europe/Berlin',
  uuid: 'must be a UUID',
  'local-date': 'must be a date YYYY-MM-DD',
  'wall-time': 'must be a wall-clock time HH:MM between 00:00 and 24:00',
  email: 'must be an email address',
};

/** A union of literals fails as one `const` error per literal and an `anyOf`: together, one enum error. */
function allowedValuesByPath(errors: AjvError[]): Map<string, unknown[]> {
  const allowed = new Map<string, unknown[]>();
  for (const error of errors) {
    const path = error.instancePath ?? '';
    if (error.keyword === 'const')
      allowed.set(path, [...(allowed.get(path) ?? []), error.params?.allowedValue]);
    const values: unknown = error.params?.allowedValues;
    if (error.keyword === 'enum' && Array.isArray(values))
      allowed.set(path, [...(allowed.get(path) ?? []), ...(values as unknown[])]);
  }
  return allowed;
}

function describeValidation(errors: AjvError[]): FieldError[] {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  const allowed = allowedValuesByPath(errors);
  for (const error of errors) {
    const params = error.params ?? {};
    let field: string;
    let message: string;
    const values = allowed.get(error.instancePath ?? '');
    if (values !== undefined && ['const', 'enum', 'anyOf'].includes(error.keyword ?? '')) {
      field = fieldName(error.instancePath);
      message = `must be one of: ${values.map((value) => String(value)).join(', ')}`;
    } else if (error.keyword === 'additionalProperties') {
      field = fieldName(error.instancePath, String(params.additionalProperty));
      message = 'is not a known field';
    } else if (error.keyword === 'required') {
      field = fieldName(error.instancePath, String(params.missingProperty));
      message = 'is required';
    } else if (error.keyword === 'format') {
      field = fieldName(error.instancePath);
      message = FORMAT_MESSAGES[String(params.format)] ?? error.message ?? 'has the wrong format';
    } else {
      field = fieldName(error.instancePath);
      message = error.message ?? 'is invalid';
    }
    const key = `${field}\u0000${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ field, message });
    }
  }
  return out;
}

/** Maps everything thrown in a request to problem+json; a 5xx never shows internals. */
export function errorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  if (error instanceof SchedError) return sendProblem(reply, error);
  if (error.validation) {
    const errors = describeValidation(error.validation);
    const context = error.validationContext;
    const prefixed =
      context === 'querystring' || context === 'params' || context === 'headers'
        ? errors.map((e) => ({ ...e, field: e.field === 'body' ? context : e.field }))
        : errors;
    const first = prefixed[0];
    const detail =
      prefixed.length === 1 && first
        ? `${first.field}: ${first.message}`
        : `${prefixed.length} fields are invalid`;
    return sendProblem(reply, new SchedError(ErrorCode.VALIDATION_FAILED, detail, { errors: prefixed }));
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return sendProblem(
        reply,
        new SchedError(ErrorCode.PAYLOAD_TOO_LARGE, 'the request body is larger than 1 MiB', {
          errors: [{ field: 'body', message: 'must be at most 1 MiB' }],
        }),
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return sendProblem(
        reply,
        new SchedError(ErrorCode.UNSUPPORTED_MEDIA_TYPE, 'send the body as application/json', {
          errors: [{ field: 'content-type', message: 'must be application/json' }],
        }),
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return sendProblem(
        reply,
        new SchedError(ErrorCode.VALIDATION_FAILED, 'the body is not valid JSON', {
          errors: [
            {
              field: 'body',
              message: error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'is empty' : 'is not valid JSON',
            },
          ],
        }),
      );
  }
  if (error instanceof SyntaxError && error.statusCode === 400) {
    return sendProblem(
      reply,
      new SchedError(ErrorCode.VALIDATION_FAILED, 'the body is not valid JSON', {
        errors: [{ field: 'body', message: error.message }],
      }),
    );
  }
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    const body = {
      type: 'about:blank',
      title: TITLES[error.statusCode] ?? 'Bad Request',
      status: error.statusCode,
      detail: error.message,
      code: error.code ?? 'BAD_REQUEST',
    };
    return reply.code(error.statusCode).type('application/problem+json').send(body);
  }
  request.log.error({ err: error }, 'request failed');
  return sendProblem(
    reply,
    new SchedError(ErrorCode.INTERNAL, `something went wrong on our side; quote request id ${request.id}`),
  );
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply) {
  return sendProblem(
    reply,
    new SchedError(ErrorCode.NOT_FOUND, `no route for ${request.method} ${request.url.split('?')[0] ?? ''}`),
  );
}
