import { setTimeout as delay } from 'node:timers/promises';
import type { AccessTokenSource } from '../../port/provider.js';
import type { GuardedHttp, HttpResponse } from '../../../integrations/index.js';
import { ProviderError } from '../../../integrations/index.js';
import { parseRetryAfter } from '../../../integrations/index.js';

export type OutlookClientOptions = {
  http: GuardedHttp;
  /** e.g. https://graph.microsoft.com/v1.0 */
  apiUrl: string;
  tokens: AccessTokenSource;
  /** Per exchange; GuardedHttp's default when absent. */
  timeoutMs?: number;
  /** Longest total wait on 429/503/504 within one call before the failure goes to the caller. */
  retryBudgetMs?: number;
  sleep?: (ms: number) => Promise<void>;
};

export type GraphRequest = {
  method: string;
  /** Relative to apiUrl (`me/events`), or an absolute nextLink/deltaLink the API handed out. */
  path: string;
  query?: Record<string, string>;
  body?: unknown;
  headers?: Record<string, string>;
};

export type GraphResponse = { status: number; headers: Record<string, string>; body: unknown; url: string };

/**
 * Immutable ids survive moves between calendars (and must be asked for on every request, delta and
 * subscriptions included); UTC answers make the adapter independent of the mailbox's zone.
 */
export const BASE_PREFER = 'IdType="ImmutableId", outlook.timezone="UTC"';

const RETRIED = new Set([429, 503, 504]);
const FIRST_BACKOFF_MS = 200;

/**
 * The HTTP side of Microsoft Graph: bearer tokens (one forced refresh after a 401), Prefer headers,
 * a short bounded wait on throttling, and Graph's error JSON mapped onto ProviderError codes.
 */
export class OutlookClient {
  readonly #api: URL;
  readonly #budget: number;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: OutlookClientOptions) {
    this.#api = new URL(options.apiUrl.endsWith('/') ? options.apiUrl : `${options.apiUrl}/`);
    this.#budget = options.retryBudgetMs ?? 2000;
    this.#sleep = options.sleep ?? ((ms) => delay(ms));
  }

  /** Sends one call; answers every status but 401 and exhausted throttling, which it throws. */
  async send(request: GraphRequest): Promise<GraphResponse> {
    const url = this.#resolve(request);
    let waited = 0;
    let attempt = 0;
    let refreshed = false;
    let forceRefresh = false;
    for (;;) {
      const token = await this.options.tokens.get(forceRefresh ? { forceRefresh: true } : undefined);
      forceRefresh = false;
      const response = await this.options.http.request({
        method: request.method,
        url,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          prefer: BASE_PREFER,
          ...(request.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...request.headers,
        },
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
        ...(this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs }),
        maxRedirects: 0,
      });
      if (response.status === 401) {
        if (refreshed) throw graphError(parse(response), `${request.method} ${url}`);
        refreshed = true;
        forceRefresh = true;
        continue;
      }
      if (RETRIED.has(response.status)) {
        const wait =
          parseRetryAfter(response.headers['retry-after'], Date.now()) ?? FIRST_BACKOFF_MS * 2 ** attempt;
        if (waited + wait <= this.#budget) {
          await this.#sleep(wait);
          waited += wait;
          attempt++;
          continue;
        }
      }
      return parse(response);
    }
  }

  /** Sends and expects a 2xx JSON answer; anything else is thrown as a ProviderError. */
  async json(request: GraphRequest): Promise<Record<string, unknown>> {
    const response = await this.send(request);
    if (response.status < 200 || response.status >= 300) {
      throw graphError(response, `${request.method} ${request.path}`);
    }
    if (typeof response.body !== 'object' || response.body === null) {
      throw new ProviderError(
        'BAD_RESPONSE',
        `${request.method} ${request.path} answered without a JSON object`,
        {
          status: response.status,
        },
      );
    }
    return response.body as Record<string, unknown>;
  }

  /**
   * Links from the API (nextLink, deltaLink) carry the bearer token when followed, so they must point
   * back at the API, never elsewhere.
   */
  #resolve(request: GraphRequest): string {
    const url = /^https?:\/\//i.test(request.path) ? new URL(request.path) : new URL(request.path, this.#api);
    if (url.origin !== this.#api.origin || !url.pathname.startsWith(this.#api.pathname)) {
      throw new ProviderError(
        'BAD_RESPONSE',
        `the API pointed outside ${this.#api.toString()}: ${url.origin}`,
      );
    }
    // Names are written as Graph documents them ($filter, not %24filter); values are encoded.
    const extra = Object.entries(request.query ?? {}).map(
      ([name, value]) => `${name}=${encodeURIComponent(value)}`,
    );
    if (extra.length === 0) return url.toString();
    return `${url.toString()}${url.search ? '&' : '?'}${extra.join('&')}`;
  }
}

function parse(response: HttpResponse): GraphResponse {
  let body: unknown = null;
  if (response.body.trim() !== '') {
    try {
      body = JSON.parse(response.body) as unknown;
    } catch {
      body = response.body;
    }
  }
  return { status: response.status, headers: response.headers, body, url: response.url };
}

/** Graph's `error.code` (`ErrorItemNotFound`, `SyncStateNotFound`, ...), or null. */
export function graphErrorCode(response: GraphResponse): string | null {
  const error = (response.body as { error?: { code?: unknown } } | null)?.error;
  return typeof error?.code === 'string' ? error.code : null;
}

function graphMessage(response: GraphResponse): string {
  const error = (response.body as { error?: { message?: unknown } } | null)?.error;
  const code = graphErrorCode(response);
  const message = typeof error?.message === 'string' ? error.message : '';
  return [code, message].filter(Boolean).join(': ');
}

export function graphError(response: GraphResponse, what: string): ProviderError {
  const status = response.status;
  const code = graphErrorCode(response) ?? '';
  const detail = graphMessage(response);
  const text = `${what} answered ${status}${detail ? ` (${detail})` : ''}`;
  const retryAfterMs = parseRetryAfter(response.headers['retry-after'], Date.now());
  const withRetry = retryAfterMs === undefined ? { status } : { status, retryAfterMs };
  if (status === 401)
    return new ProviderError('AUTH_FAILED', `${text}: the access token was refused`, { status });
  if (/quota/i.test(code) || status === 507) return new ProviderError('QUOTA_EXCEEDED', text, withRetry);
  if (status === 403) return new ProviderError('FORBIDDEN', text, { status });
  if (status === 404 || status === 410) return new ProviderError('NOT_FOUND', text, { status });
  // Exchange reports a change-key mismatch as 412, and through some paths as 409 with the same code.
  if (status === 412 || code === 'ErrorIrresolvableConflict') {
    return new ProviderError('PRECONDITION_FAILED', text, { status });
  }
  if (status === 429) return new ProviderError('RATE_LIMITED', text, withRetry);
  if (status >= 500) return new ProviderError('UNAVAILABLE', text, withRetry);
  if (status >= 400) return new ProviderError('REJECTED', text, { status });
  return new ProviderError('BAD_RESPONSE', `${text}, which Graph does not answer here`, { status });
}
