import type { GuardedHttp, HttpResponse } from '../../../integrations/index.js';
import { ProviderError } from '../../../integrations/index.js';
import {
  type MultiStatus,
  type PropName,
  PROP,
  normalizeEtag,
  parseDavErrors,
  parseMultiStatus,
  propText,
  propfindBody,
} from './caldav-xml.js';
import { parseRetryAfter } from '../../../integrations/index.js';

export type CalDavCredentials = { username: string; password: string };

export type CalDavClientOptions = {
  /** Per exchange; GuardedHttp's default when absent. */
  timeoutMs?: number;
  /** Largest answer read; GuardedHttp's default when absent. */
  maxBytes?: number;
};

export type PutCondition = { ifNoneMatch: '*' } | { ifMatch: string } | null;

/** PUT outcomes a caller decides about; every other failure is thrown as a ProviderError. */
export type PutResult =
  | { kind: 'written'; etag: string | null; location: string | null }
  | { kind: 'precondition-failed' }
  | { kind: 'uid-conflict' };

export type FetchedObject = { url: string; etag: string | null; body: string };

const XML_TYPE = 'application/xml; charset=utf-8';

/**
 * The HTTP side of CalDAV: methods, headers, status codes. Knows nothing of sync; every request goes
 * through GuardedHttp, and every refusal comes out as a ProviderError.
 */
export class CalDavClient {
  readonly #authorization: string;

  constructor(
    private readonly http: GuardedHttp,
    credentials: CalDavCredentials,
    private readonly options: CalDavClientOptions = {},
  ) {
    const pair = Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64');
    this.#authorization = `Basic ${pair}`;
  }

  async send(
    method: string,
    url: string,
    headers: Record<string, string> = {},
    body?: string,
  ): Promise<HttpResponse> {
    return this.http.request({
      method,
      url,
      headers: { authorization: this.#authorization, ...headers },
      ...(body === undefined ? {} : { body }),
      ...(this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs }),
      ...(this.options.maxBytes === undefined ? {} : { maxBytes: this.options.maxBytes }),
    });
  }

  /** PROPFIND; the answer's hrefs are resolved against the URL that answered (after redirects). */
  async propfind(url: string, depth: 0 | 1, props: readonly PropName[]): Promise<MultiStatus> {
    const response = await this.send(
      'PROPFIND',
      url,
      { depth: String(depth), 'content-type': XML_TYPE },
      propfindBody(props),
    );
    if (response.status !== 207) throw statusError(response, 'PROPFIND', url);
    return parseMultiStatus(response.body, response.url);
  }

  /** REPORT, handed back whatever the status: sync callers fall back on refusals rather than fail. */
  async report(url: string, depth: 0 | 1, body: string): Promise<HttpResponse> {
    return this.send('REPORT', url, { depth: String(depth), 'content-type': XML_TYPE }, body);
  }

  async get(url: string): Promise<FetchedObject | null> {
    // Xandikos serves objects not named *.ics as application/octet-stream and answers 406 to a strict Accept.
    const response = await this.send('GET', url, { accept: 'text/calendar, */*;q=0.5' });
    if (response.status === 404 || response.status === 410) return null;
    if (response.status !== 200) throw statusError(response, 'GET', url);
    return { url: response.url, etag: normalizeEtag(response.headers.etag), body: response.body };
  }

  async put(url: string, ics: string, condition: PutCondition): Promise<PutResult> {
    const headers: Record<string, string> = { 'content-type': 'text/calendar; charset=utf-8' };
    if (condition && 'ifNoneMatch' in condition) headers['if-none-match'] = condition.ifNoneMatch;
    if (condition && 'ifMatch' in condition) headers['if-match'] = condition.ifMatch;
    const response = await this.send('PUT', url, headers, ics);
    if (response.status === 200 || response.status === 201 || response.status === 204) {
      const location = response.headers.location ? new URL(response.headers.location, url).toString() : null;
      return { kind: 'written', etag: normalizeEtag(response.headers.etag), location };
    }
    if (response.status === 412) return { kind: 'precondition-failed' };
    // RFC 4791 answers a second object with the same UID with 403 or 409 no-uid-conflict (Radicale: 409);
    // Xandikos wraps it in a 207 carrying 412.
    if (
      [403, 409, 207].includes(response.status) &&
      parseDavErrors(response.body).includes('no-uid-conflict')
    ) {
      return { kind: 'uid-conflict' };
    }
    if (response.status === 207) {
      const reasons = parseDavErrors(response.body);
      throw new ProviderError(
        'REJECTED',
        `PUT ${url} was refused${reasons.length ? ` (${reasons.join(', ')})` : ''}`,
        { status: 207 },
      );
    }
    throw statusError(response, 'PUT', url);
  }

  /** Resolves 'missing' when nothing was there; a 412 comes back to the caller to tell apart. */
  async delete(url: string, ifMatch: string | null): Promise<'deleted' | 'missing' | 'precondition-failed'> {
    const response = await this.send('DELETE', url, ifMatch ? { 'if-match': ifMatch } : {});
    if (response.status === 404 || response.status === 410) return 'missing';
    if (response.status === 412) return 'precondition-failed';
    if (response.status === 200 || response.status === 202 || response.status === 204) return 'deleted';
    if (response.status === 207) {
      const failed = parseMultiStatus(response.body, response.url).responses.find(
        (r) => r.status !== null && r.status >= 400,
      );
      if (!failed) return 'deleted';
      throw new ProviderError('REJECTED', `DELETE ${url} failed with ${failed.status} for ${failed.path}`, {
        status: failed.status ?? 207,
      });
    }
    throw statusError(response, 'DELETE', url);
  }

  /** The ETag of one object, for servers that answer a PUT without one. */
  async etagOf(url: string): Promise<string | null> {
    const answer = await this.propfind(url, 0, [PROP.getetag]);
    return normalizeEtag(propText(answer.responses[0], PROP.getetag));
  }
}

export function statusError(response: HttpResponse, method: string, url: string): ProviderError {
  const status = response.status;
  const what = `${method} ${url} answered ${status}`;
  if (status === 401)
    return new ProviderError('AUTH_FAILED', `${what}: the credentials were refused`, { status });
  if (status === 403) return new ProviderError('FORBIDDEN', what, { status });
  if (status === 404 || status === 410) return new ProviderError('NOT_FOUND', what, { status });
  if (status === 412) return new ProviderError('PRECONDITION_FAILED', what, { status });
  if (status === 429 || status === 503) {
    const retryAfterMs = parseRetryAfter(response.headers['retry-after'], Date.now());
    const details = retryAfterMs === undefined ? { status } : { status, retryAfterMs };
    return new ProviderError(status === 429 ? 'RATE_LIMITED' : 'UNAVAILABLE', what, details);
  }
  if (status === 507)
    return new ProviderError('QUOTA_EXCEEDED', `${what}: the server is out of space`, { status });
  if (status >= 500) return new ProviderError('UNAVAILABLE', what, { status });
  if (status >= 400) return new ProviderError('REJECTED', what, { status });
  return new ProviderError('BAD_RESPONSE', `${what}, which CalDAV does not expect here`, { status });
}
