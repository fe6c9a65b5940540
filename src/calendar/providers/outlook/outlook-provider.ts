import {
  collectChanges,
  type AccessTokenSource,
  type CalendarProvider,
  type ChangePage,
  type ChangeStream,
  type KnownEvents,
  type OutgoingEvent,
  type OutgoingSeries,
  type ProviderCapabilities,
  type PushCapable,
  type RemoteChanges,
  type RemoteEvent,
  type SeriesCapable,
  type WatchChannel,
  type WatchRequest,
  type WrittenEvent,
} from '../../port/provider.js';
import { StreamedListing } from '../streamed-listing.js';
import type { GuardedHttp } from '../../../integrations/index.js';
import { ProviderError } from '../../../integrations/index.js';
import { type GraphRequest, OutlookClient, graphError } from './outlook-client.js';
import { type DeltaStep, deltaPages, MAX_PAGES, SyncStateLost } from './outlook-delta.js';
import {
  BOOKING_PROPERTY_ID,
  type GraphEvent,
  etagOf,
  isGraphEvent,
  graphWallTime,
  renderGraphEvent,
  toGraphEvent,
  toGraphSeries,
} from './map-outlook-event.js';
import {
  DEFAULT_MAX_SUBSCRIPTION_MINUTES,
  type SubscriptionTarget,
  createSubscription,
  deleteSubscription,
  renewSubscription,
} from './outlook-push.js';

export type OutlookProviderOptions = {
  http: GuardedHttp;
  /** e.g. https://graph.microsoft.com/v1.0 (SCHED_OUTLOOK_API_URL). */
  apiUrl: string;
  /** A calendar id, or 'primary' for the mailbox's default calendar. */
  calendarId: string;
  tokens: AccessTokenSource;
  timeoutMs?: number;
  /** The calendarView window synced, relative to the start of each round. */
  window?: { pastDays: number; futureDays: number };
  /** Prefer: odata.maxpagesize on delta pages. */
  pageSize?: number;
  /** The largest subscription lifetime Graph grants for events. */
  maxSubscriptionMinutes?: number;
  /** Longest total wait on throttling within one call. */
  retryBudgetMs?: number;
  now?: () => number;
};

/** The cursor: the calendar, the window of the round that made it, and the deltaLink it ended with. */
type Cursor = { v: 1; c: string; s: number; e: number; d: string };

const DAY_MS = 86_400_000;
const DEFAULT_WINDOW = { pastDays: 31, futureDays: 400 };
/** A window is renewed once less than this share of its future remains. */
const RENEW_AT_SHARE = 0.75;
const EXPAND = `singleValueExtendedProperties($filter=id eq '${BOOKING_PROPERTY_ID}')`;

const odataString = (value: string) => `'${value.replace(/'/g, "''")}'`;

/** The stored cursor, or null when it is missing, not ours, or for another calendar or API. */
function readCursor(text: string | null, calendarId: string, apiUrl: string): Cursor | null {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as Partial<Cursor> | null;
    if (
      value?.v === 1 &&
      value.c === calendarId &&
      typeof value.s === 'number' &&
      typeof value.e === 'number' &&
      typeof value.d === 'string' &&
      value.d.startsWith(apiUrl)
    ) {
      return value as Cursor;
    }
  } catch {
    // Not ours: a full round replaces it.
  }
  return null;
}

/** calendarView answers at most this many events a page ($top, List calendarView). */
const MAX_VIEW_PAGE = 1000;
/**
 * The only documented event subscription resource for a signed-in user: every event in the mailbox
 * (there is no per-calendar path for events), see docs/provider-notes.md.
 */
const SUBSCRIPTION_RESOURCE = 'me/events';

/**
 * Outlook through Microsoft Graph v1.0, over a moving window: every single instance, occurrence and
 * exception is its own remote object (Graph gives each its own id), rendered as one VEVENT; series
 * masters are skipped, their instances carry the times.
 *
 * Graph v1.0 documents calendarView/delta for the primary calendar only, so the primary calendar is
 * read incrementally with delta, and any other calendar with a full calendarView listing diffed
 * against the known etags. Push is a subscription on `me/events` either way.
 */
export class OutlookCalendarProvider implements CalendarProvider, PushCapable, SeriesCapable {
  readonly capabilities: ProviderCapabilities;
  readonly #client: OutlookClient;
  readonly #calendarId: string;
  readonly #apiUrl: string;
  readonly #window: { pastDays: number; futureDays: number };
  readonly #pageSize: number;
  readonly #now: () => number;
  readonly #push: SubscriptionTarget;

  constructor(options: OutlookProviderOptions) {
    this.#client = new OutlookClient(options);
    this.#calendarId = options.calendarId;
    this.#apiUrl = options.apiUrl.replace(/\/+$/, '');
    this.#window = options.window ?? DEFAULT_WINDOW;
    this.#pageSize = options.pageSize ?? 100;
    this.#now = options.now ?? Date.now;
    this.capabilities = { write: true, incremental: this.#primary(), push: true, supportsRecurrence: true };
    this.#push = {
      client: this.#client,
      resource: SUBSCRIPTION_RESOURCE,
      maxMinutes: options.maxSubscriptionMinutes ?? DEFAULT_MAX_SUBSCRIPTION_MINUTES,
      now: this.#now,
    };
  }

  #primary(): boolean {
    return this.#calendarId === 'primary';
  }

  #calendarPath(): string {
    return `me/calendars/${encodeURIComponent(this.#calendarId)}`;
  }

  /** Where events are created and listed: /me/events is the default calendar's collection. */
  #eventsPath(): string {
    return this.#primary() ? 'me/events' : `${this.#calendarPath()}/events`;
  }

  #windowAt(now: number): { start: number; end: number; query: Record<string, string> } {
    const start = now - this.#window.pastDays * DAY_MS;
    const end = now + this.#window.futureDays * DAY_MS;
    const query = { startDateTime: new Date(start).toISOString(), endDateTime: new Date(end).toISOString() };
    return { start, end, query };
  }

  listChanges(cursor: string | null, known: KnownEvents): Promise<RemoteChanges> {
    return collectChanges(this.readChanges(cursor, known));
  }

  /** Each delta (or calendarView) page is handed over as it comes, converted to iCalendar. */
  async *readChanges(cursor: string | null, known: KnownEvents): ChangeStream {
    const now = this.#now();
    const listing = new StreamedListing(known);
    if (!this.#primary()) return yield* this.#viewListing(listing, now);
    const state = readCursor(cursor, this.#calendarId, this.#apiUrl);
    const renewBefore = now + this.#window.futureDays * RENEW_AT_SHARE * DAY_MS;
    if (state && state.e >= renewBefore) {
      try {
        const steps = deltaPages(this.#client, { method: 'GET', path: state.d }, this.#pageSize);
        return yield* this.#round(steps, listing, false, (link) => this.#cursor(state.s, state.e, link));
      } catch (error) {
        if (!(error instanceof SyncStateLost)) throw error;
        // What the round handed over stands; a full round of a new window says what else changed.
        listing.restart();
      }
    }
    return yield* this.#fullRound(listing, now);
  }

  /** A first round: a 410 on any of its pages starts it over (from the Location, else from `first`). */
  async *#fullRound(listing: StreamedListing, now: number): ChangeStream {
    const { start, end, query } = this.#windowAt(now);
    const first: GraphRequest = { method: 'GET', path: 'me/calendarView/delta', query };
    try {
      const steps = deltaPages(this.#client, first, this.#pageSize, first);
      return yield* this.#round(steps, listing, true, (link) => this.#cursor(start, end, link));
    } catch (error) {
      if (error instanceof SyncStateLost) {
        throw new ProviderError(
          'BAD_RESPONSE',
          `a fresh calendarView/delta round was refused: ${error.message}`,
        );
      }
      throw error;
    }
  }

  /**
   * One delta round, page by page. A full round (or one Graph restarted from scratch) lists the whole
   * window, so what it did not list is gone at its end.
   */
  async *#round(
    steps: AsyncGenerator<DeltaStep, string, undefined>,
    listing: StreamedListing,
    full: boolean,
    cursorOf: (deltaLink: string) => string,
  ): ChangeStream {
    let whole = full;
    // Delta pages are small (maxpagesize 100 by default): their entries are handed over in steps of
    // at least ENTRIES_PER_STEP, so each step is one expanding task and one storing statement. An id
    // that comes again within a step counts by its last word, as within a page.
    let gathered: GraphEvent[] = [];
    for (;;) {
      const step = await steps.next();
      if ((step.done || step.value.kind === 'restarted') && gathered.length > 0) {
        yield pageOf(gathered, listing);
        gathered = [];
      }
      if (step.done) {
        const removed = whole ? listing.unlisted() : [];
        if (removed.length > 0) yield { changed: [], removed };
        return { full: whole, cursor: cursorOf(step.value) };
      }
      if (step.value.kind === 'restarted') {
        whole = true;
        listing.restart();
        continue;
      }
      gathered.push(...step.value.entries);
      if (gathered.length >= ENTRIES_PER_STEP) {
        yield pageOf(gathered, listing);
        gathered = [];
      }
    }
  }

  /** A calendar other than the primary one: every event of the window through calendarView. */
  async *#viewListing(listing: StreamedListing, now: number): ChangeStream {
    const { query } = this.#windowAt(now);
    let request: GraphRequest = {
      method: 'GET',
      path: `${this.#calendarPath()}/calendarView`,
      query: { ...query, $top: String(Math.min(MAX_VIEW_PAGE, this.#pageSize)), $expand: EXPAND },
    };
    for (let page = 0; page < MAX_PAGES; page++) {
      const body = await this.#client.json(request);
      if (!Array.isArray(body.value)) {
        throw new ProviderError('BAD_RESPONSE', 'calendarView answered without a value array');
      }
      yield pageOf((body.value as unknown[]).filter(isGraphEvent), listing);
      const next = body['@odata.nextLink'];
      if (typeof next !== 'string') {
        const removed = listing.unlisted();
        if (removed.length > 0) yield { changed: [], removed };
        return { full: true, cursor: null };
      }
      request = { method: 'GET', path: next };
    }
    throw new ProviderError('BAD_RESPONSE', `calendarView did not end within ${MAX_PAGES} pages`);
  }

  #cursor(start: number, end: number, deltaLink: string): string {
    const cursor: Cursor = { v: 1, c: this.#calendarId, s: start, e: end, d: deltaLink };
    return JSON.stringify(cursor);
  }

  async getEvent(remoteId: string): Promise<RemoteEvent | null> {
    const path = `me/events/${encodeURIComponent(remoteId)}`;
    const response = await this.#client.send({ method: 'GET', path, query: { $expand: EXPAND } });
    if (response.status === 404) return null;
    if (response.status !== 200) throw graphError(response, `GET ${path}`);
    if (!isGraphEvent(response.body))
      throw new ProviderError('BAD_RESPONSE', `GET ${path} answered without an event`);
    return toRemote(response.body);
  }

  async findEvent(uid: string): Promise<RemoteEvent | null> {
    const booking = /^(.+)@sched$/.exec(uid);
    const filter = booking
      ? `singleValueExtendedProperties/Any(ep: ep/id eq ${odataString(BOOKING_PROPERTY_ID)} and ep/value eq ${odataString(booking[1]!)})`
      : `iCalUId eq ${odataString(uid)}`;
    const body = await this.#client.json({
      method: 'GET',
      path: this.#eventsPath(),
      query: { $filter: filter, $expand: EXPAND, $top: '5' },
    });
    const found = (Array.isArray(body.value) ? (body.value as unknown[]) : [])
      .filter(isGraphEvent)
      .find((e) => e.type !== 'seriesMaster');
    return found ? toRemote(found) : null;
  }

  async createEvent(event: OutgoingEvent): Promise<WrittenEvent> {
    const body = await this.#client.json({
      method: 'POST',
      path: this.#eventsPath(),
      body: toGraphEvent(event, true),
    });
    return written(body, 'POST');
  }

  async updateEvent(remoteId: string, etag: string | null, event: OutgoingEvent): Promise<WrittenEvent> {
    const body = await this.#client.json({
      method: 'PATCH',
      path: `me/events/${encodeURIComponent(remoteId)}`,
      body: toGraphEvent(event, false),
      headers: etag === null ? {} : { 'if-match': etag },
    });
    return written(body, 'PATCH');
  }

  /**
   * A series master with a patternedRecurrence, then its exceptions: a cancelled occurrence's
   * instance deleted, a moved or edited one's patched. transactionId makes a retried create return
   * the first master.
   */
  async createSeries(series: OutgoingSeries): Promise<WrittenEvent> {
    const body = await this.#client.json({
      method: 'POST',
      path: this.#eventsPath(),
      body: toGraphSeries(series, true),
    });
    const master = written(body, 'POST');
    return this.#writeInstances(master.remoteId, series);
  }

  /** The master again (conditionally); Outlook drops a series' exceptions then, so they are written again. */
  async updateSeries(remoteId: string, etag: string | null, series: OutgoingSeries): Promise<WrittenEvent> {
    await this.#client.json({
      method: 'PATCH',
      path: `me/events/${encodeURIComponent(remoteId)}`,
      body: toGraphSeries(series, false),
      headers: etag === null ? {} : { 'if-match': etag },
    });
    return this.#writeInstances(remoteId, series);
  }

  async #writeInstances(masterId: string, series: OutgoingSeries): Promise<WrittenEvent> {
    const instances = await this.#instancesOf(masterId, series);
    const ordered = [...series.occurrences].sort((a, b) => a.recurrenceId - b.recurrenceId);
    const first = ordered[0];
    // Instances Outlook places where the rule gives none (a monthly rule on the 31st in a shorter
    // month) go, so the calendar shows exactly the series' occurrences.
    const placed = new Set(ordered.map((o) => o.recurrenceId));
    for (const [originalStart, instance] of instances) {
      if (placed.has(originalStart)) continue;
      await this.#deleteInstance(instance.id);
      instances.delete(originalStart);
    }
    for (const occurrence of ordered) {
      const instance = instances.get(occurrence.recurrenceId);
      if (!instance || !first) continue;
      const path = `me/events/${encodeURIComponent(instance.id)}`;
      if (occurrence.status === 'cancelled') {
        await this.#deleteInstance(instance.id);
        continue;
      }
      const moved =
        occurrence.startsAt !== occurrence.recurrenceId ||
        occurrence.endsAt - occurrence.startsAt !== first.endsAt - first.startsAt ||
        occurrence.title !== first.title ||
        (occurrence.description ?? '') !== (first.description ?? '');
      if (!moved && instance.type !== 'exception') continue;
      await this.#client.json({
        method: 'PATCH',
        path,
        body: {
          subject: occurrence.title,
          body: { contentType: 'text', content: occurrence.description ?? '' },
          start: graphWallTime(occurrence.startsAt, series.timeZone),
          end: graphWallTime(occurrence.endsAt, series.timeZone),
        },
      });
    }
    const master = await this.#client.json({
      method: 'GET',
      path: `me/events/${encodeURIComponent(masterId)}`,
    });
    return written(master, 'GET');
  }

  async #deleteInstance(id: string): Promise<void> {
    const path = `me/events/${encodeURIComponent(id)}`;
    const response = await this.#client.send({ method: 'DELETE', path });
    if (response.status !== 404 && (response.status < 200 || response.status >= 300)) {
      throw graphError(response, `DELETE ${path}`);
    }
  }

  /** The master's instances over the series' span, by original start (epoch ms). */
  async #instancesOf(masterId: string, series: OutgoingSeries): Promise<Map<number, GraphEvent>> {
    const day = 86_400_000;
    const starts = series.occurrences.flatMap((o) => [o.recurrenceId, o.startsAt]);
    const ends = series.occurrences.flatMap((o) => [o.recurrenceId + (o.endsAt - o.startsAt), o.endsAt]);
    const found = new Map<number, GraphEvent>();
    let request: GraphRequest | null = {
      method: 'GET',
      path: `me/events/${encodeURIComponent(masterId)}/instances`,
      query: {
        startDateTime: new Date(Math.min(...starts) - day).toISOString(),
        endDateTime: new Date(Math.max(...ends) + day).toISOString(),
        $top: '100',
      },
    };
    for (let page = 0; request !== null && page < MAX_PAGES; page++) {
      const body: Record<string, unknown> = await this.#client.json(request);
      for (const item of Array.isArray(body.value) ? (body.value as unknown[]) : []) {
        if (!isGraphEvent(item)) continue;
        const original = (item as { originalStart?: unknown }).originalStart;
        const at = typeof original === 'string' ? Date.parse(original) : NaN;
        if (Number.isFinite(at)) found.set(at, item);
      }
      const next = body['@odata.nextLink'];
      request = typeof next === 'string' ? { method: 'GET', path: next } : null;
    }
    return found;
  }

  async deleteEvent(remoteId: string, etag: string | null): Promise<void> {
    const path = `me/events/${encodeURIComponent(remoteId)}`;
    const response = await this.#client.send({
      method: 'DELETE',
      path,
      headers: etag === null ? {} : { 'if-match': etag },
    });
    if (response.status === 404 || response.status === 410) return;
    if (response.status < 200 || response.status >= 300) throw graphError(response, `DELETE ${path}`);
  }

  startWatch(request: WatchRequest): Promise<WatchChannel> {
    return createSubscription(this.#push, request);
  }

  renewWatch(channel: WatchChannel, request: WatchRequest): Promise<WatchChannel> {
    return renewSubscription(this.#push, channel, request);
  }

  stopWatch(channel: WatchChannel): Promise<void> {
    return deleteSubscription(this.#push, channel);
  }
}

/**
 * One page's entries against what the caller holds: events that differ, converted; removed ones,
 * and meetings their organizer cancelled (they stay in the calendar, marked, but take no time), gone.
 * Series masters are skipped: their instances carry the times. The last word on an id wins.
 */
/** Delta entries handed over per step, at least (see `#round`). */
const ENTRIES_PER_STEP = 200;

function pageOf(entries: readonly GraphEvent[], listing: StreamedListing): ChangePage {
  const latest = new Map<string, GraphEvent>();
  for (const entry of entries) {
    latest.delete(entry.id);
    latest.set(entry.id, entry);
  }
  const listed: { remoteId: string; etag: string | null; item: GraphEvent }[] = [];
  const gone: string[] = [];
  for (const item of latest.values()) {
    if (item['@removed'] || item.isCancelled) gone.push(item.id);
    else if (item.type !== 'seriesMaster') listed.push({ remoteId: item.id, etag: etagOf(item), item });
  }
  return {
    changed: listing.changedOf(listed).map((object) => toRemote(object.item)),
    removed: listing.removed(gone),
  };
}

function toRemote(event: GraphEvent): RemoteEvent {
  return { remoteId: event.id, etag: etagOf(event), ics: renderGraphEvent(event) };
}

function written(body: Record<string, unknown>, method: string): WrittenEvent {
  if (!isGraphEvent(body)) throw new ProviderError('BAD_RESPONSE', `${method} answered without an event id`);
  return { remoteId: body.id, etag: etagOf(body) };
}
