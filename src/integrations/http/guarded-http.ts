import { request, type Dispatcher } from 'undici';
import { ProviderError } from '../errors.js';
import { OutboundRefusedError, type OutboundGuard } from './outbound-guard.js';

export type HttpRequest = {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
  /** Whole exchange, redirects included. */
  timeoutMs?: number;
  /** Largest body read; a longer answer fails with BAD_RESPONSE rather than filling memory. */
  maxBytes?: number;
  /** 0 hands a redirect back to the caller as it is. */
  maxRedirects?: number;
};

export type HttpResponse = {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The URL that answered, after redirects. */
  url: string;
};

export const DEFAULT_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;
const DEFAULT_MAX_REDIRECTS = 5;

/**
 * Every request to a user-given URL goes through here: the outbound guard checks each URL, redirects
 * included, and its agent checks every address connected to; every exchange has a time limit and a
 * size limit. Failures come out as ProviderError with a code from the closed set.
 */
export class GuardedHttp {
  readonly #agent: Dispatcher;

  constructor(
    private readonly guard: OutboundGuard,
    options: { connectTimeoutMs?: number } = {},
  ) {
    this.#agent = guard.agent({ connectTimeoutMs: options.connectTimeoutMs ?? 5000 });
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  /** The URL checked as far as it can be before connecting; a refusal is a ProviderError URL_REFUSED. */
  async checkUrl(raw: string): Promise<URL> {
    try {
      return await this.guard.checkUrlResolved(raw, { httpOnlyIfAllowed: true });
    } catch (error) {
      if (error instanceof OutboundRefusedError) {
        throw new ProviderError('URL_REFUSED', error.message);
      }
      throw error;
    }
  }

  async request(input: HttpRequest): Promise<HttpResponse> {
    const timeoutMs = input.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const maxBytes = input.maxBytes ?? DEFAULT_MAX_BYTES;
    const maxRedirects = input.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    const deadline = AbortSignal.timeout(timeoutMs);
    let url = input.url;
    let headers = { ...(input.headers ?? {}) };
    let method = input.method;
    let body = input.body;
    for (let hop = 0; ; hop++) {
      const checked = await this.checkUrl(url);
      const response = await this.#once(checked, method, headers, body, deadline, timeoutMs);
      const location = response.headers.location;
      if (response.statusCode >= 300 && response.statusCode < 400 && location && maxRedirects > 0) {
        await response.body.dump().catch(() => undefined);
        if (hop >= maxRedirects) {
          throw new ProviderError('BAD_RESPONSE', `more than ${maxRedirects} redirects from ${input.url}`);
        }
        const next = new URL(String(location), checked);
        if (!sameSite(checked, next) || (checked.protocol === 'https:' && next.protocol === 'http:')) {
          headers = withoutAuthorization(headers);
        }
        if (response.statusCode === 303) {
          method = 'GET';
          body = undefined;
        }
        url = next.toString();
        continue;
      }
      const text = await readLimited(response.body, maxBytes, url, deadline, timeoutMs);
      return { status: response.statusCode, headers: flatten(response.headers), body: text, url };
    }
  }

  async #once(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: string | undefined,
    deadline: AbortSignal,
    timeoutMs: number,
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await request(url, {
        method: method,
        headers,
        ...(body === undefined ? {} : { body }),
        dispatcher: this.#agent,
        signal: deadline,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
    } catch (error) {
      throw asProviderError(error, url.toString(), timeoutMs);
    }
  }
}

function asProviderError(error: unknown, url: string, timeoutMs: number): ProviderError {
  if (error instanceof ProviderError) return error;
  const err = error as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = err.code ?? err.cause?.code;
  if (code === 'EOUTBOUNDREFUSED' || err.cause instanceof OutboundRefusedError) {
    return new ProviderError('URL_REFUSED', (err.cause ?? err).message);
  }
  if (
    err.name === 'TimeoutError' ||
    err.name === 'AbortError' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT' ||
    code === 'UND_ERR_CONNECT_TIMEOUT'
  ) {
    return new ProviderError('TIMEOUT', `no answer from ${url} within ${timeoutMs} ms`);
  }
  return new ProviderError('NETWORK', `could not reach ${url}: ${code ?? err.message}`);
}

async function readLimited(
  body: Dispatcher.ResponseData['body'],
  maxBytes: number,
  url: string,
  deadline: AbortSignal,
  timeoutMs: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      size += buffer.length;
      if (size > maxBytes) {
        body.destroy();
        throw new ProviderError('BAD_RESPONSE', `the answer from ${url} is larger than ${maxBytes} bytes`);
      }
      chunks.push(buffer);
    }
  } catch (error) {
    if (deadline.aborted) throw new ProviderError('TIMEOUT', `no answer from ${url} within ${timeoutMs} ms`);
    throw asProviderError(error, url, timeoutMs);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function flatten(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

/**
 * Credentials follow a redirect within one site only: iCloud sends each account from caldav.icloud.com
 * to its own pNN-caldav.icloud.com host, and the password must go along; it must never go to another
 * organisation's host.
 */
function sameSite(from: URL, to: URL): boolean {
  if (from.hostname === to.hostname) return true;
  const site = (host: string) => host.split('.').slice(-2).join('.');
  return site(from.hostname) === site(to.hostname) && !/^\d+$/.test(from.hostname.split('.').pop() ?? '');
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() !== 'authorization') out[name] = value;
  }
  return out;
}
