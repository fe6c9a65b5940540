import { createHash } from 'node:crypto';
import {
  collectChanges,
  type ChangeStream,
  type CalendarProvider,
  type KnownEvents,
  type ListingEnd,
  type OutgoingEvent,
  type OutgoingSeries,
  type ProviderCapabilities,
  type RemoteChanges,
  type RemoteEvent,
  type SeriesCapable,
  type WrittenEvent,
} from '../../port/provider.js';
import { diffListing, type ListedObject, type ListingDiff } from '../../policy/listing-diff.js';
import { renderBookingEvent, renderSeriesObject } from '../../../ical/render-event.js';
import type { GuardedHttp, HttpResponse } from '../../../integrations/index.js';
import { ProviderError } from '../../../integrations/index.js';
import { inlineParser, ParserThreadError, type CalendarParser } from '../../parsing/parser.js';
import { CalDavClient, statusError, type CalDavClientOptions } from './caldav-client.js';
import {
  type DavEntries,
  type DavEntry,
  type DavResponse,
  PROP,
  calendarQueryByUidBody,
  decodePath,
  encodePath,
  multigetBody,
  normalizeEtag,
  parseMultiStatus,
  propText,
  readDavEntries,
  syncCollectionBody,
} from './caldav-xml.js';

export type CalDavProviderOptions = CalDavClientOptions & {
  http: GuardedHttp;
  collectionUrl: string;
  username: string;
  password: string;
  /** hrefs per calendar-multiget. */
  batchSize?: number;
  /** Reads the REPORT answers (listings, calendar-multiget) off the event loop; inline when absent. */
  parser?: CalendarParser;
};

/** What the opaque cursor holds: the collection it belongs to, and a sync token or else a ctag. */
type CursorState = { v: 1; c: string; t: string | null; g: string | null };

type Listing = { listed: ListedObject[]; token: string | null; ctag: string | null };

type Fetched = { etag: string | null; ics: string };

/** What a listing leaves to do: the bodies to fetch, what is gone, and how the listing ends. */
type Plan = ListingEnd & { fetch: string[]; removed: string[] };

export class CalDavProvider implements CalendarProvider, SeriesCapable {
  readonly capabilities: ProviderCapabilities = {
    write: true,
    incremental: true,
    push: false,
    supportsRecurrence: true,
  };
  readonly #client: CalDavClient;
  readonly #collection: URL;
  readonly #collectionPath: string;
  readonly #batchSize: number;
  readonly #parser: CalendarParser;

  constructor(options: CalDavProviderOptions) {
    this.#client = new CalDavClient(options.http, options, options);
    const url = new URL(options.collectionUrl);
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    this.#collection = url;
    this.#collectionPath = decodePath(url.pathname);
    this.#batchSize = options.batchSize ?? 100;
    this.#parser = options.parser ?? inlineParser();
  }

  listChanges(cursor: string | null, known: KnownEvents): Promise<RemoteChanges> {
    return collectChanges(this.readChanges(cursor, known));
  }

  /**
   * The listing first (hrefs and etags), then the bodies that differ, one calendar-multiget a page.
   * The next page's REPORT is under way while a page is read, so the server and the parser's thread
   * work at the same time; at most one answer waits besides the page being read.
   */
  async *readChanges(cursor: string | null, known: KnownEvents): ChangeStream {
    const plan = await this.#plan(cursor, known);
    const { fetch, removed, ...end } = plan;
    const pages: string[][] = [];
    for (let i = 0; i < fetch.length; i += this.#batchSize) pages.push(fetch.slice(i, i + this.#batchSize));
    let pending = removed;
    let asked: Promise<HttpResponse> | null = null;
    for (let i = 0; i < pages.length; i++) {
      const answer: HttpResponse = await (asked ?? this.#askMultiget(pages[i]!));
      // After a refusal the next page is asked for only once this one's is dealt with.
      asked = answer.status === 207 && i + 1 < pages.length ? this.#askMultiget(pages[i + 1]!) : null;
      // Seen at the next turn; a consumer that stops first must not leave it unhandled.
      asked?.catch(() => undefined);
      const page = await this.#fetchEvents(pages[i]!, answer, known);
      yield { changed: page.changed, removed: unique([...pending, ...page.gone]) };
      pending = [];
    }
    if (pending.length > 0) yield { changed: [], removed: pending };
    return end;
  }

  async #plan(cursor: string | null, known: KnownEvents): Promise<Plan> {
    const state = this.#readCursor(cursor);
    if (state?.t) {
      const delta = await this.#syncSince(state.t, known);
      if (delta) return delta;
    } else if (state?.g) {
      const answer = await this.#client.propfind(this.#collection.toString(), 0, [PROP.getctag]);
      if (propText(answer.responses[0], PROP.getctag) === state.g) {
        return { fetch: [], removed: [], full: false, cursor };
      }
    }
    return this.#fullListing(known);
  }

  async getEvent(remoteId: string): Promise<RemoteEvent | null> {
    const url = this.#urlOf(remoteId);
    const object = await this.#client.get(url);
    if (!object || !hasEvent(object.body)) return null;
    const etag = object.etag ?? (await this.#client.etagOf(url));
    return { remoteId, etag, ics: object.body };
  }

  async findEvent(uid: string): Promise<RemoteEvent | null> {
    const atUsualPlace = await this.#objectAt(`${this.#collectionPath}${objectName(uid)}.ics`);
    if (atUsualPlace && uidOf(atUsualPlace.ics) === uid) return atUsualPlace;
    return this.#findByUid(uid);
  }

  createEvent(event: OutgoingEvent): Promise<WrittenEvent> {
    return this.#create(event.uid, renderBookingEvent(event));
  }

  updateEvent(remoteId: string, etag: string | null, event: OutgoingEvent): Promise<WrittenEvent> {
    return this.#replace(remoteId, etag, event.uid, renderBookingEvent(event));
  }

  /** One object holding the series' VTIMEZONE, master and overrides, at `<series id>@sched.ics`. */
  createSeries(series: OutgoingSeries): Promise<WrittenEvent> {
    return this.#create(series.uid, renderSeriesObject(series));
  }

  /** The whole object again, conditionally: CalDAV keeps a series and its overrides as one resource. */
  updateSeries(remoteId: string, etag: string | null, series: OutgoingSeries): Promise<WrittenEvent> {
    return this.#replace(remoteId, etag, series.uid, renderSeriesObject(series));
  }

  async #create(uid: string, ics: string): Promise<WrittenEvent> {
    const path = `${this.#collectionPath}${objectName(uid)}.ics`;
    const url = this.#urlOf(path);
    const result = await this.#client.put(url, ics, { ifNoneMatch: '*' });
    if (result.kind === 'written') {
      const remoteId = result.location ? decodePath(new URL(result.location).pathname) : path;
      return { remoteId, etag: result.etag ?? (await this.#client.etagOf(this.#urlOf(remoteId))) };
    }
    // An earlier attempt whose answer was lost, or the same booking written before: same UID, same object.
    const existing =
      result.kind === 'precondition-failed' ? await this.#objectAt(path) : await this.#findByUid(uid);
    if (existing && uidOf(existing.ics) === uid) {
      return { remoteId: existing.remoteId, etag: existing.etag };
    }
    if (!existing) {
      throw new ProviderError(
        'PRECONDITION_FAILED',
        `the server refused to create ${url} but has no such object`,
      );
    }
    throw new ProviderError('REJECTED', `${url} already holds another event (UID ${uidOf(existing.ics)})`);
  }

  async #replace(remoteId: string, etag: string | null, uid: string, ics: string): Promise<WrittenEvent> {
    const url = this.#urlOf(remoteId);
    const result = await this.#client.put(url, ics, { ifMatch: etag ?? '*' });
    if (result.kind === 'written') {
      return { remoteId, etag: result.etag ?? (await this.#client.etagOf(url)) };
    }
    if (result.kind === 'uid-conflict') {
      throw new ProviderError('REJECTED', `UID ${uid} already belongs to another object than ${url}`);
    }
    if (etag === null || !(await this.#client.get(url))) {
      throw new ProviderError('NOT_FOUND', `${url} does not exist`, { status: 412 });
    }
    throw new ProviderError('PRECONDITION_FAILED', `${url} changed since etag ${etag}`, { status: 412 });
  }

  async deleteEvent(remoteId: string, etag: string | null): Promise<void> {
    const url = this.#urlOf(remoteId);
    const outcome = await this.#client.delete(url, etag);
    if (outcome !== 'precondition-failed' || !(await this.#client.get(url))) return;
    throw new ProviderError('PRECONDITION_FAILED', `${url} changed since etag ${String(etag)}`, {
      status: 412,
    });
  }

  /**
   * RFC 6578 changes since the token; null when the token is refused and a full listing must follow.
   * Servers refuse differently: 403/409 valid-sync-token (Radicale), 500 (Xandikos), or a silent full
   * listing as if no token had been sent (DAViCal).
   */
  async #syncSince(token: string, known: KnownEvents): Promise<Plan | null> {
    const url = this.#collection.toString();
    const response = await this.#client.report(url, 1, syncCollectionBody(token));
    if (response.status === 401 || response.status === 429) throw statusError(response, 'REPORT', url);
    if (response.status !== 207) return null;
    const answer = await this.#read(response);
    if (!answer.syncToken) return null;
    const members = answer.entries.filter((r) => this.#isMember(r));
    const present = members.filter((r) => r.status === null || (r.status >= 200 && r.status < 300));
    const removed = members.filter((r) => r.status === 404 || r.status === 410).map((r) => r.path);
    const unchanged = present.some((r) => r.etag !== null && known.get(r.path) === r.etag);
    if (unchanged) {
      // Unchanged objects in a delta: either a full listing in disguise (DAViCal, unknown token),
      // which leaves deletions out, or DAViCal re-sending what changed in the same instant as its
      // first token. Only a listing tells them apart; the token counted if no deletion was missed.
      const listing = await this.#propfindListing();
      const diff = diffListing(known, listing.listed);
      const missed = diff.deleted.some((id) => !removed.includes(id));
      return { ...this.#diff({ ...listing, token: answer.syncToken, ctag: null }, diff), full: missed };
    }
    return {
      fetch: present.map((r) => r.path),
      removed: unique(removed),
      full: false,
      cursor: this.#writeCursor(answer.syncToken, null),
    };
  }

  async #fullListing(known: KnownEvents): Promise<Plan> {
    const url = this.#collection.toString();
    const response = await this.#client.report(url, 1, syncCollectionBody(null));
    if (response.status === 401 || response.status === 429) throw statusError(response, 'REPORT', url);
    let listing: Listing;
    if (response.status === 207) {
      const answer = await this.#read(response);
      const members = answer.entries.filter((r) => this.#isMember(r) && r.status !== 404);
      listing = { listed: members.map(listed), token: answer.syncToken, ctag: null };
    } else {
      // No sync-collection: list with PROPFIND and watch the ctag instead.
      listing = await this.#propfindListing();
    }
    return this.#diff(listing, diffListing(known, listing.listed));
  }

  async #propfindListing(): Promise<Listing> {
    const url = this.#collection.toString();
    const answer = await this.#client.propfind(url, 1, [PROP.getetag, PROP.resourcetype, PROP.getctag]);
    const own = answer.responses.find((r) => sameCollection(r.path, this.#collectionPath));
    const members = answer.responses.filter((r) => this.#isMember(r) && !isCollection(r));
    const entries = members.map((r) => ({ path: r.path, etag: normalizeEtag(propText(r, PROP.getetag)) }));
    return { listed: entries.map(listed), token: null, ctag: propText(own, PROP.getctag) };
  }

  #diff(listing: Listing, diff: ListingDiff<ListedObject>): Plan {
    return {
      fetch: diff.changed.map((object) => object.remoteId),
      removed: diff.deleted,
      full: true,
      cursor: this.#writeCursor(listing.token, listing.ctag),
    };
  }

  /** Bodies by calendar-multiget. What vanished meanwhile is gone; what holds no VEVENT is gone if known. */
  async #fetchEvents(
    paths: string[],
    answer: HttpResponse,
    known: KnownEvents,
  ): Promise<{ changed: RemoteEvent[]; gone: string[] }> {
    const changed: RemoteEvent[] = [];
    const gone: string[] = [];
    const fetched = await this.#multiget(answer);
    for (const path of paths) {
      const object = fetched.has(path) ? (fetched.get(path) ?? null) : await this.#getOne(path);
      if (object && hasEvent(object.ics)) {
        changed.push({ remoteId: path, etag: object.etag, ics: object.ics });
      } else if (object === null || known.has(path)) {
        gone.push(path);
      }
    }
    return { changed, gone };
  }

  /**
   * path → object, or null where the server says it is gone. Paths it leaves out (DAViCal omits
   * missing hrefs) are absent from the map and read one by one.
   */
  async #multiget(response: HttpResponse): Promise<Map<string, Fetched | null>> {
    const found = new Map<string, Fetched | null>();
    const url = this.#collection.toString();
    if (response.status !== 207) {
      if ([401, 403, 429].includes(response.status) || response.status >= 500) {
        throw statusError(response, 'REPORT', url);
      }
      return found;
    }
    for (const entry of (await this.#read(response)).entries) {
      if (entry.status === 404 || entry.status === 410) {
        found.set(entry.path, null);
        continue;
      }
      if (entry.calendarData !== null) found.set(entry.path, { etag: entry.etag, ics: entry.calendarData });
    }
    return found;
  }

  /** One page's calendar-multiget, sent; its answer is read by #multiget. */
  #askMultiget(paths: string[]): Promise<HttpResponse> {
    return this.#client.report(this.#collection.toString(), 1, multigetBody(paths));
  }

  /**
   * A REPORT's multistatus, read on the parser's thread. An answer too large for the thread's memory
   * is read here instead, as it would be without the parser.
   */
  async #read(response: HttpResponse): Promise<{ entries: DavEntry[]; syncToken: string | null }> {
    let read: DavEntries;
    try {
      read = await this.#parser.readMultiStatus(response.body, response.url);
    } catch (error) {
      if (!(error instanceof ParserThreadError)) throw error;
      if (error.reason !== 'memory') {
        throw new ProviderError(
          'BAD_RESPONSE',
          `the answer from ${response.url} could not be read: ${error.message}`,
        );
      }
      read = readDavEntries(response.body, response.url);
    }
    if (!read.ok) throw new ProviderError('BAD_RESPONSE', read.error);
    return read;
  }

  async #getOne(path: string): Promise<Fetched | null> {
    const object = await this.#client.get(this.#urlOf(path));
    return object ? { etag: object.etag, ics: object.body } : null;
  }

  async #objectAt(path: string): Promise<RemoteEvent | null> {
    const url = this.#urlOf(path);
    const object = await this.#client.get(url);
    if (!object) return null;
    return { remoteId: path, etag: object.etag ?? (await this.#client.etagOf(url)), ics: object.body };
  }

  /** For servers that refuse a second object with one UID (RFC 4791 no-uid-conflict) without naming it. */
  async #findByUid(uid: string): Promise<RemoteEvent | null> {
    const url = this.#collection.toString();
    const response = await this.#client.report(url, 1, calendarQueryByUidBody(uid));
    if (response.status !== 207) throw statusError(response, 'REPORT', url);
    for (const entry of parseMultiStatus(response.body, response.url).responses) {
      const ics = propText(entry, PROP.calendarData);
      if (ics !== null && uidOf(ics) === uid) {
        const etag = normalizeEtag(propText(entry, PROP.getetag));
        return { remoteId: entry.path, etag: etag ?? (await this.#client.etagOf(entry.url)), ics };
      }
    }
    return null;
  }

  #isMember(entry: { path: string }): boolean {
    return !sameCollection(entry.path, this.#collectionPath) && !entry.path.endsWith('/');
  }

  #urlOf(remoteId: string): string {
    const url = new URL(encodePath(remoteId), this.#collection);
    if (url.origin !== this.#collection.origin) {
      throw new ProviderError('NOT_FOUND', `${remoteId} is not an object of ${this.#collection.toString()}`);
    }
    return url.toString();
  }

  #readCursor(cursor: string | null): CursorState | null {
    if (!cursor) return null;
    try {
      const state = JSON.parse(cursor) as Partial<CursorState> | null;
      if (state?.v !== 1 || state.c !== this.#cursorScope()) return null;
      return {
        v: 1,
        c: state.c,
        t: typeof state.t === 'string' ? state.t : null,
        g: typeof state.g === 'string' ? state.g : null,
      };
    } catch {
      return null;
    }
  }

  /** A token is only meaningful to the collection that issued it. */
  #cursorScope(): string {
    return `${this.#collection.origin}${this.#collectionPath}`;
  }

  #writeCursor(token: string | null, ctag: string | null): string {
    const state: CursorState = { v: 1, c: this.#cursorScope(), t: token, g: ctag };
    return JSON.stringify(state);
  }
}

function listed(entry: { path: string; etag: string | null }): ListedObject {
  return { remoteId: entry.path, etag: entry.etag };
}

function sameCollection(a: string, b: string): boolean {
  return a.replace(/\/+$/, '') === b.replace(/\/+$/, '');
}

function isCollection(entry: DavResponse): boolean {
  return entry.props.some(
    (p) => p.name === 'resourcetype' && p.children.some((c) => c.name === 'collection'),
  );
}

function hasEvent(ics: string): boolean {
  return /^BEGIN:VEVENT\s*$/im.test(ics);
}

function uidOf(ics: string): string | null {
  const unfolded = ics.replace(/\r?\n[ \t]/g, '');
  const match = /^UID(?:;[^:\r\n]*)?:(.*?)\r?$/im.exec(unfolded);
  return match?.[1]?.trim() ?? null;
}

/** The UID itself where it makes a plain file name; otherwise a hash of it, so names never clash. */
function objectName(uid: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._@-]{0,199}$/.test(uid)) return uid;
  return createHash('sha256').update(uid).digest('hex').slice(0, 40);
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
