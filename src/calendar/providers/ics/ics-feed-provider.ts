import {
  collectChanges,
  type CalendarProvider,
  type ChangeStream,
  type KnownEvents,
  type ProviderCapabilities,
  type RemoteChanges,
  type RemoteEvent,
  type WrittenEvent,
} from '../../port/provider.js';
import { diffListing } from '../../policy/listing-diff.js';
import { ICS_MAX_BYTES } from '../../../ical/split-calendar.js';
import type { FeedRead } from '../../parsing/feed.js';
import { inlineParser, ParserThreadError, type CalendarParser } from '../../parsing/parser.js';
import { DEFAULT_TIMEOUT_MS, type GuardedHttp, type HttpResponse } from '../../../integrations/index.js';
import { ProviderError } from '../../../integrations/index.js';
import { parseRetryAfter } from '../../../integrations/index.js';

export type IcsFeedProviderOptions = {
  http: GuardedHttp;
  /** https, http (where the outbound guard allows it), or webcal. */
  url: string;
  /** Whole exchange, redirects included. */
  timeoutMs?: number;
  /** Largest feed read; a larger one is refused rather than filling memory. */
  maxBytes?: number;
  /** Splits the feed off the event loop; the calling thread's inline parser when absent. */
  parser?: CalendarParser;
};

/** What listChanges hands back as its cursor: the validators of the last full answer. */
type FeedCursor = { etag: string | null; lastModified: string | null };

type Fetched =
  | { kind: 'not-modified' }
  | { kind: 'feed'; events: RemoteEvent[]; warnings: string[]; cursor: string | null };

const READ_ONLY = 'ICS feeds are read-only';

/**
 * A subscribed iCalendar feed (webcal). Feeds have no incremental listing and no per-object versions,
 * so every change means reading the whole feed; conditional GETs keep an unchanged feed to one empty
 * answer, and a hash of each event's text stands in for an etag so only what changed is reported.
 */
export class IcsFeedProvider implements CalendarProvider {
  readonly capabilities: ProviderCapabilities = { write: false, incremental: false, push: false };
  readonly #http: GuardedHttp;
  #urls: string[];
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #parser: CalendarParser;

  constructor(options: IcsFeedProviderOptions) {
    this.#http = options.http;
    this.#urls = candidateUrls(options.url);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxBytes = options.maxBytes ?? ICS_MAX_BYTES;
    this.#parser = options.parser ?? inlineParser();
  }

  listChanges(cursor: string | null, known: KnownEvents): Promise<RemoteChanges> {
    return collectChanges(this.readChanges(cursor, known));
  }

  /** A feed comes whole in one answer, so it is one page. */
  async *readChanges(cursor: string | null, known: KnownEvents): ChangeStream {
    const validators = parseCursor(cursor);
    const fetched = await this.#fetch(validators);
    if (fetched.kind === 'not-modified') return { full: false, cursor };
    const { changed, deleted } = diffListing(known, fetched.events);
    yield { changed, removed: deleted };
    return { full: true, cursor: fetched.cursor, warnings: fetched.warnings };
  }

  /** A feed's objects are named by their UID. */
  findEvent(uid: string): Promise<RemoteEvent | null> {
    return this.getEvent(uid);
  }

  async getEvent(remoteId: string): Promise<RemoteEvent | null> {
    const fetched = await this.#fetch(null);
    if (fetched.kind === 'not-modified') return null;
    return fetched.events.find((event) => event.remoteId === remoteId) ?? null;
  }

  async createEvent(): Promise<WrittenEvent> {
    throw new ProviderError('FORBIDDEN', READ_ONLY);
  }

  async updateEvent(): Promise<WrittenEvent> {
    throw new ProviderError('FORBIDDEN', READ_ONLY);
  }

  async deleteEvent(): Promise<void> {
    throw new ProviderError('FORBIDDEN', READ_ONLY);
  }

  async #fetch(validators: FeedCursor | null): Promise<Fetched> {
    const headers: Record<string, string> = {
      accept: 'text/calendar, text/plain;q=0.5, */*;q=0.1',
    };
    if (validators?.etag) headers['if-none-match'] = validators.etag;
    if (validators?.lastModified) headers['if-modified-since'] = validators.lastModified;
    const response = await this.#get(headers);
    if (response.status === 304) {
      // Without validators sent, a 304 answers a question we never asked.
      if (!validators) throw badResponse(`${this.#label()} answered 304 to an unconditional request`);
      return { kind: 'not-modified' };
    }
    throwForStatus(response, this.#label());
    if (response.status !== 200) {
      throw badResponse(`${this.#label()} answered ${response.status} instead of a calendar`);
    }
    return { kind: 'feed', ...(await this.#parse(response)), cursor: cursorOf(response) };
  }

  /**
   * webcal has no transport of its own: it is tried as https first, and as http only when https cannot
   * connect at all. GuardedHttp refuses http except towards addresses the operator allows, and that
   * refusal is not the interesting error, so the https failure is what the caller sees.
   */
  async #get(headers: Record<string, string>): Promise<HttpResponse> {
    const [url, fallback] = this.#urls;
    const request = (target: string) =>
      this.#http.request({
        method: 'GET',
        url: target,
        headers,
        timeoutMs: this.#timeoutMs,
        maxBytes: this.#maxBytes,
      });
    try {
      return await request(url ?? '');
    } catch (error) {
      if (!fallback || !(error instanceof ProviderError && error.code === 'NETWORK')) throw error;
      try {
        const response = await request(fallback);
        // Later fetches go straight to the scheme that answered.
        this.#urls = [fallback];
        return response;
      } catch (fallbackError) {
        const refused = fallbackError instanceof ProviderError && fallbackError.code === 'URL_REFUSED';
        throw refused ? error : fallbackError;
      }
    }
  }

  async #parse(response: HttpResponse): Promise<{ events: RemoteEvent[]; warnings: string[] }> {
    const body = response.body.replace(/^\uFEFF/, '');
    if (!/^\s*BEGIN:VCALENDAR[ \t]*(?:\r\n|\n|\r|$)/i.test(body)) {
      throw badResponse(`${this.#label()} did not answer with an iCalendar feed: ${describeBody(response)}`);
    }
    let read: FeedRead;
    try {
      read = await this.#parser.readFeed(body, this.#maxBytes);
    } catch (error) {
      if (!(error instanceof ParserThreadError)) throw error;
      throw badResponse(`${this.#label()} could not be read: ${error.message}`);
    }
    if (!read.ok) throw badResponse(`${this.#label()} is not a valid iCalendar feed: ${read.error}`);
    return read;
  }

  #label(): string {
    return `the feed at ${redact(this.#urls[0] ?? '')}`;
  }
}

/** The URLs to try, in order; only webcal gets a second one. */
function candidateUrls(raw: string): string[] {
  const match = /^webcals?:\/\//i.exec(raw.trim());
  if (!match) return [raw.trim()];
  const rest = raw.trim().slice(match[0].length);
  return match[0].toLowerCase() === 'webcals://'
    ? [`https://${rest}`]
    : [`https://${rest}`, `http://${rest}`];
}

function parseCursor(cursor: string | null): FeedCursor | null {
  if (!cursor) return null;
  try {
    const value = JSON.parse(cursor) as Partial<FeedCursor> | null;
    const etag = typeof value?.etag === 'string' ? value.etag : null;
    const lastModified = typeof value?.lastModified === 'string' ? value.lastModified : null;
    // A cursor that carries nothing usable means a plain full fetch, as for no cursor at all.
    return etag || lastModified ? { etag, lastModified } : null;
  } catch {
    return null;
  }
}

function cursorOf(response: HttpResponse): string | null {
  const etag = response.headers.etag ?? null;
  const lastModified = response.headers['last-modified'] ?? null;
  return etag || lastModified ? JSON.stringify({ etag, lastModified } satisfies FeedCursor) : null;
}

function throwForStatus(response: HttpResponse, label: string): void {
  const status = response.status;
  if (status === 401)
    throw new ProviderError('AUTH_FAILED', `${label} asks for credentials (401)`, { status });
  if (status === 403) throw new ProviderError('FORBIDDEN', `${label} refused access (403)`, { status });
  if (status === 404 || status === 410) {
    throw new ProviderError('NOT_FOUND', `${label} does not exist (${status})`, { status });
  }
  const retryAfterMs = parseRetryAfter(response.headers['retry-after'], Date.now());
  const details = { status, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) };
  if (status === 429) throw new ProviderError('RATE_LIMITED', `${label} asks to slow down (429)`, details);
  if (status >= 500) throw new ProviderError('UNAVAILABLE', `${label} failed (${status})`, details);
  if (status >= 300 && status !== 304) {
    throw badResponse(`${label} answered ${status} instead of a calendar`, status);
  }
}

/** Says what came back instead, since the usual cause is a login or error page. */
function describeBody(response: HttpResponse): string {
  const type = (response.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  const start = response.body.trimStart().slice(0, 100).toLowerCase();
  if (start === '') return 'the answer was empty';
  if (type === 'text/html' || start.startsWith('<!doctype html') || start.startsWith('<html')) {
    return 'it sent an HTML page (often a login or error page; check that the URL is the feed itself)';
  }
  if (type.includes('json') || start.startsWith('{') || start.startsWith('[')) return 'it sent JSON';
  if (type.includes('xml') || start.startsWith('<')) return 'it sent XML';
  return `it sent ${type === '' ? 'something else' : type} that does not start with BEGIN:VCALENDAR`;
}

function badResponse(message: string, status?: number): ProviderError {
  return new ProviderError('BAD_RESPONSE', message, status === undefined ? {} : { status });
}

/** Feed URLs often carry a private token in their path or query; messages are stored and shown. */
function redact(raw: string): string {
  try {
    const url = new URL(raw);
    return `${url.protocol}//${url.host}${url.pathname.length > 1 ? '/…' : '/'}`;
  } catch {
    return 'the given URL';
  }
}
