import type { AccessTokenSource } from '../../port/provider.js';
import type { GuardedHttp, HttpResponse } from '../../../integrations/index.js';
import { ProviderError, type ProviderErrorCode } from '../../../integrations/index.js';
import type { GoogleErrorBody } from './google-types.js';
import { parseRetryAfter } from '../../../integrations/index.js';

export type RetryPolicy = {
  /** Retries after the first attempt for rate limits and 5xx; 0 for none. */
  retries: number;
  /** Total time spent waiting between attempts; a longer Retry-After is handed to the engine. */
  budgetMs: number;
  /** First backoff step; doubled per retry, plus jitter. */
  baseDelayMs: number;
};

export const DEFAULT_RETRY: RetryPolicy = { retries: 2, budgetMs: 2000, baseDelayMs: 200 };

export type GoogleClientOptions = {
  http: GuardedHttp;
  /** SCHED_GOOGLE_API_URL, e.g. https://www.googleapis.com/calendar/v3 */
  apiUrl: string;
  tokens: AccessTokenSource;
  timeoutMs?: number;
  maxBytes?: number;
  retry?: Partial<RetryPolicy>;
  /** Replaceable in tests. */
  sleep?: (ms: number) => Promise<void>;
};

export type Query = Record<string, string | number | boolean | readonly string[] | undefined>;

export type CallOptions = {
  query?: Query;
  body?: unknown;
  ifMatch?: string;
  /** Statuses handed back to the caller instead of being thrown. */
  accept?: readonly number[];
  /** False for calls that must not be repeated blindly (a watch would make a second channel). */
  retry?: boolean;
};

export type GoogleAnswer<T> = { status: number; body: T; reason: string | null };

const RATE_REASONS = new Set(['rateLimitExceeded', 'userRateLimitExceeded']);
const QUOTA_REASONS = new Set(['quotaExceeded', 'dailyLimitExceeded']);

/** `errors[0].reason` of a Google error body; null when the body is not one. */
export function errorReason(body: unknown): string | null {
  const reason = (body as GoogleErrorBody | null)?.error?.errors?.[0]?.reason;
  return typeof reason === 'string' ? reason : null;
}

function errorMessage(body: unknown): string | null {
  const message = (body as GoogleErrorBody | null)?.error?.message;
  return typeof message === 'string' ? message.slice(0, 300) : null;
}

/** The closed error code a Google answer stands for, by status and (for 403 and 410) by reason. */
export function codeFor(status: number, reason: string | null): ProviderErrorCode {
  if (status === 401) return 'AUTH_FAILED';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 403) {
    if (reason !== null && RATE_REASONS.has(reason)) return 'RATE_LIMITED';
    if (reason !== null && QUOTA_REASONS.has(reason)) return 'QUOTA_EXCEEDED';
    return 'FORBIDDEN';
  }
  if (status === 404) return 'NOT_FOUND';
  if (status === 410) return reason === 'deleted' ? 'NOT_FOUND' : 'CURSOR_INVALID';
  if (status === 412) return 'PRECONDITION_FAILED';
  if (status >= 500) return 'UNAVAILABLE';
  if (status >= 400) return 'REJECTED';
  return 'BAD_RESPONSE';
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * HTTP to the Calendar API: a bearer token per request (one forced refresh after a 401), a short
 * bounded retry of rate limits and 5xx, and every failure as a ProviderError. Longer waits are the
 * engine's: it backs off per connection.
 */
export class GoogleClient {
  readonly #base: string;
  readonly #retry: RetryPolicy;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: GoogleClientOptions) {
    this.#base = options.apiUrl.replace(/\/+$/, '');
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  url(path: string, query: Query = {}): string {
    const url = new URL(`${this.#base}${path}`);
    for (const [name, value] of Object.entries(query)) {
      if (value === undefined) continue;
      if (!Array.isArray(value)) {
        url.searchParams.set(name, String(value));
        continue;
      }
      for (const item of value as readonly string[]) url.searchParams.append(name, item);
    }
    return url.toString();
  }

  async call<T>(method: string, path: string, options: CallOptions = {}): Promise<GoogleAnswer<T>> {
    const url = this.url(path, options.query);
    let refreshed = false;
    let waited = 0;
    for (let attempt = 0; ; attempt++) {
      const token = await this.options.tokens.get(refreshed ? { forceRefresh: true } : undefined);
      const response = await this.#send(method, url, token, options);
      const body = parseJson(response.body);
      const reason = errorReason(body);
      if (response.status >= 200 && response.status < 300) {
        if (body === undefined) {
          throw new ProviderError('BAD_RESPONSE', `${method} ${path}: the answer is not JSON`, {
            status: response.status,
          });
        }
        return { status: response.status, body: body as T, reason: null };
      }
      if (response.status === 401 && !refreshed) {
        // An access token can be revoked or expire before the time we were told.
        refreshed = true;
        continue;
      }
      if (options.accept?.includes(response.status)) {
        return { status: response.status, body: body as T, reason };
      }
      const code = codeFor(response.status, reason);
      const after = parseRetryAfter(response.headers['retry-after'], Date.now());
      if ((code === 'RATE_LIMITED' || code === 'UNAVAILABLE') && options.retry !== false) {
        const delay = after ?? this.#retry.baseDelayMs * 2 ** attempt + Math.floor(Math.random() * 100);
        if (attempt < this.#retry.retries && waited + delay <= this.#retry.budgetMs) {
          waited += delay;
          await this.#sleep(delay);
          continue;
        }
      }
      throw this.#error(code, method, path, response, reason, body, after);
    }
  }

  #send(method: string, url: string, token: string, options: CallOptions): Promise<HttpResponse> {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json; charset=utf-8';
    if (options.ifMatch !== undefined) headers['if-match'] = options.ifMatch;
    return this.options.http.request({
      method,
      url,
      headers,
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      ...(this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs }),
      ...(this.options.maxBytes === undefined ? {} : { maxBytes: this.options.maxBytes }),
      maxRedirects: 0,
    });
  }

  #error(
    code: ProviderErrorCode,
    method: string,
    path: string,
    response: HttpResponse,
    reason: string | null,
    body: unknown,
    after: number | undefined,
  ): ProviderError {
    const what = [reason, errorMessage(body)].filter(Boolean).join(': ');
    const message = `Google Calendar ${method} ${path}: ${response.status}${what ? ` ${what}` : ''}`;
    return new ProviderError(code, message, {
      status: response.status,
      ...(after === undefined ? {} : { retryAfterMs: after }),
    });
  }
}
