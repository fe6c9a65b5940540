import { randomUUID } from 'node:crypto';
import {
  collectChanges,
  type AccessTokenSource,
  type CalendarProvider,
  type ChangePage,
  type ChangeStream,
  type KnownEvents,
  type ListingEnd,
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
import { formatInstant, isValidTimeZone } from '../../../domain/time-zones.js';
import type { GuardedHttp } from '../../../integrations/index.js';
import { ProviderError } from '../../../integrations/index.js';
import { GoogleClient, type RetryPolicy } from './google-client.js';
import { GoogleEventsApi, MAX_PAGE_SIZE } from './google-events-api.js';
import { bookingIdOfUid, eventIdForBooking } from './google-ids.js';
import {
  BOOKING_PROPERTY,
  type EventGroup,
  masterEtag,
  objectEtag,
  renderGroup,
  SERIES_PROPERTY,
} from './google-render.js';
import { recurValue } from '../../../ical/render-series.js';
import { Temporal } from 'temporal-polyfill';
import type { GoogleEvent } from './google-types.js';

export type GoogleProviderOptions = {
  http: GuardedHttp;
  /** SCHED_GOOGLE_API_URL, e.g. https://www.googleapis.com/calendar/v3 */
  apiUrl: string;
  /** A calendar id, or `primary`. */
  calendarId: string;
  tokens: AccessTokenSource;
  timeoutMs?: number;
  maxBytes?: number;
  /** Items per events.list page (at most 2500). */
  pageSize?: number;
  retry?: Partial<RetryPolicy>;
  sleep?: (ms: number) => Promise<void>;
};

/** What the opaque cursor holds: the calendar it belongs to and Google's sync token. */
type CursorState = { v: 1; c: string; t: string };

/**
 * Google Calendar v3 behind the provider port. remoteId is the id of a single event or of a series
 * master; a series' exceptions are folded into its master's object, so one object is one iCalendar
 * UID, as on CalDAV.
 */
export class GoogleCalendarProvider implements CalendarProvider, PushCapable, SeriesCapable {
  readonly capabilities: ProviderCapabilities = {
    write: true,
    incremental: true,
    push: true,
    supportsRecurrence: true,
  };
  readonly #api: GoogleEventsApi;
  readonly #calendarId: string;

  constructor(options: GoogleProviderOptions) {
    const client = new GoogleClient({
      http: options.http,
      apiUrl: options.apiUrl,
      tokens: options.tokens,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
      ...(options.retry === undefined ? {} : { retry: options.retry }),
      ...(options.sleep === undefined ? {} : { sleep: options.sleep }),
    });
    const pageSize = Math.min(MAX_PAGE_SIZE, Math.max(1, options.pageSize ?? MAX_PAGE_SIZE));
    this.#api = new GoogleEventsApi(client, options.calendarId, pageSize);
    this.#calendarId = options.calendarId;
  }

  listChanges(cursor: string | null, known: KnownEvents): Promise<RemoteChanges> {
    return collectChanges(this.readChanges(cursor, known));
  }

  /** Each events.list page is handed over as it comes (series of a full listing at its end). */
  async *readChanges(cursor: string | null, known: KnownEvents): ChangeStream {
    const listing = new StreamedListing(known);
    const token = this.#readCursor(cursor);
    if (token !== null) {
      const end = yield* this.#incremental(this.#api.pages({ syncToken: token }), listing);
      if (end !== null) return end;
      // The token was refused: what its pages handed over stands, a full listing says the rest.
      listing.restart();
    }
    return yield* this.#full(this.#api.pages({}), listing);
  }

  async getEvent(remoteId: string): Promise<RemoteEvent | null> {
    const event = await this.#api.get(remoteId);
    if (event === null || event.status === 'cancelled') return null;
    if (event.recurringEventId !== undefined) return this.getEvent(event.recurringEventId);
    return this.#object({ master: event, exceptions: await this.#api.exceptionsOf(event) });
  }

  /**
   * A booking's UID names its event id, so one events.get finds it; a listing by iCalUID finds any
   * other event (and bookings written when the UID was still sent), the private tag the rest.
   */
  async findEvent(uid: string): Promise<RemoteEvent | null> {
    const bookingId = bookingIdOfUid(uid);
    if (bookingId !== null) {
      const direct = await this.#api.get(eventIdForBooking(bookingId));
      if (direct && direct.status !== 'cancelled' && isBookingEvent(direct, uid, bookingId)) {
        return this.#object({ master: direct, exceptions: await this.#api.exceptionsOf(direct) });
      }
    }
    const byUid = await this.#api.list({ iCalUID: uid });
    const hit = byUid?.items.find((item) => item.status !== 'cancelled');
    if (hit) return this.getEvent(hit.recurringEventId ?? hit.id);
    if (bookingId !== null) {
      const tagged = await this.#api.list({ privateExtendedProperty: `${BOOKING_PROPERTY}=${bookingId}` });
      const found = tagged?.items.find((item) => item.status !== 'cancelled');
      if (found) return this.getEvent(found.recurringEventId ?? found.id);
    }
    return null;
  }

  /**
   * Exactly once by the client-chosen id: Google's insert docs say to supply only one of `id` and
   * `iCalUID`, so only the id derived from the booking goes out, and a retried insert meets the first
   * attempt's event as a 409. Google then makes the iCalUID itself; `renderGroup` gives the booking's
   * UID back, and `findEvent` reaches the event by its id (docs/provider-notes.md, Google Calendar).
   */
  async createEvent(event: OutgoingEvent): Promise<WrittenEvent> {
    const id = eventIdForBooking(event.bookingId);
    const answer = await this.#api.insert({ ...eventBody(event), id });
    if (answer.status !== 409) return written(answer.body);
    // The id is taken: an earlier attempt whose answer was lost, or this booking's event deleted
    // since, which keeps its id as a tombstone and comes back by an update.
    const existing = await this.#api.get(id);
    if (existing && isBookingEvent(existing, event.uid, event.bookingId)) {
      if (existing.status !== 'cancelled') return this.#written(existing);
      const restored = await this.#api.patch(id, eventBody(event), existing.etag ?? '*');
      if (restored.status === 200) return written(restored.body);
      throw new ProviderError('PRECONDITION_FAILED', `event ${id} changed while being restored`, {
        status: restored.status,
      });
    }
    const found = await this.findEvent(event.uid);
    if (found) return { remoteId: found.remoteId, etag: found.etag };
    throw new ProviderError('REJECTED', `event id ${id} or UID ${event.uid} belongs to another event`, {
      status: 409,
    });
  }

  async updateEvent(remoteId: string, etag: string | null, event: OutgoingEvent): Promise<WrittenEvent> {
    let ifMatch = etag === null ? null : masterEtag(etag);
    if (ifMatch === null) {
      // Google revives a deleted event on update; only an event that exists may be written.
      const current = await this.#live(remoteId);
      if (!current) throw notFound(remoteId);
      ifMatch = current.etag ?? '*';
    }
    const answer = await this.#api.patch(remoteId, eventBody(event), ifMatch);
    if (answer.status === 404 || answer.status === 410) throw notFound(remoteId);
    if (answer.status === 412) {
      if (!(await this.#live(remoteId))) throw notFound(remoteId);
      throw new ProviderError('PRECONDITION_FAILED', `event ${remoteId} changed since etag ${String(etag)}`, {
        status: 412,
      });
    }
    return this.#written(answer.body);
  }

  /**
   * The series as one recurring event: its master carries the rule and an EXDATE per cancelled
   * occurrence in `recurrence`, with start and end in the series' zone; each moved or edited
   * occurrence is a PATCH of its instance (`<master id>_<original start in UTC>`, Google's instance id).
   * The id is derived from the series id, so a retried insert meets the first attempt as a 409.
   */
  async createSeries(series: OutgoingSeries): Promise<WrittenEvent> {
    const id = eventIdForBooking(series.seriesId);
    const answer = await this.#api.insert({ ...seriesBody(series), id });
    let master: GoogleEvent;
    if (answer.status !== 409) {
      master = answer.body;
    } else {
      const existing = await this.#api.get(id);
      if (!existing || existing.extendedProperties?.private?.[SERIES_PROPERTY] !== series.seriesId) {
        throw new ProviderError('REJECTED', `event id ${id} belongs to another event`, { status: 409 });
      }
      const restored = await this.#api.patch(id, seriesBody(series), existing.etag ?? '*');
      if (restored.status !== 200) {
        throw new ProviderError('PRECONDITION_FAILED', `event ${id} changed while being written`, {
          status: restored.status,
        });
      }
      master = restored.body;
    }
    return this.#writeInstances(master, series);
  }

  async updateSeries(remoteId: string, etag: string | null, series: OutgoingSeries): Promise<WrittenEvent> {
    let ifMatch = etag === null ? null : masterEtag(etag);
    if (ifMatch === null) {
      const current = await this.#live(remoteId);
      if (!current) throw notFound(remoteId);
      ifMatch = current.etag ?? '*';
    }
    const answer = await this.#api.patch(remoteId, seriesBody(series), ifMatch);
    if (answer.status === 404 || answer.status === 410) throw notFound(remoteId);
    if (answer.status === 412) {
      if (!(await this.#live(remoteId))) throw notFound(remoteId);
      throw new ProviderError('PRECONDITION_FAILED', `event ${remoteId} changed since etag ${String(etag)}`, {
        status: 412,
      });
    }
    if (answer.body.status === 'cancelled') throw notFound(remoteId);
    return this.#writeInstances(answer.body, series);
  }

  /**
   * The series' moved or edited occurrences as instance exceptions, and an instance changed before
   * but now back at its place written back to it; then the object's etag over master and exceptions.
   */
  async #writeInstances(master: GoogleEvent, series: OutgoingSeries): Promise<WrittenEvent> {
    const first = firstInstance(series);
    const exceptions = await this.#api.exceptionsOf(master);
    const changedBefore = new Set(exceptions.filter((e) => e.status !== 'cancelled').map((e) => e.id));
    let wrote = false;
    for (const occurrence of series.occurrences) {
      if (occurrence.status !== 'confirmed' || !first) continue;
      const instanceId = `${master.id}_${compactUtc(occurrence.recurrenceId)}`;
      if (!isOverride(occurrence, first) && !changedBefore.has(instanceId)) continue;
      const zone = seriesZone(series);
      const answer = await this.#api.patch(
        instanceId,
        {
          summary: occurrence.title,
          description: occurrence.description ?? null,
          start: { dateTime: formatInstant(occurrence.startsAt, zone), timeZone: zone },
          end: { dateTime: formatInstant(occurrence.endsAt, zone), timeZone: zone },
          status: 'confirmed',
        },
        '*',
      );
      if (answer.status !== 200) {
        throw new ProviderError('REJECTED', `instance ${instanceId} could not be written`, {
          status: answer.status,
        });
      }
      wrote = true;
    }
    const current = wrote ? ((await this.#api.get(master.id)) ?? master) : master;
    return {
      remoteId: master.id,
      etag: objectEtag({ master: current, exceptions: await this.#api.exceptionsOf(current) }),
    };
  }

  async deleteEvent(remoteId: string, etag: string | null): Promise<void> {
    const answer = await this.#api.delete(remoteId, etag === null ? null : masterEtag(etag));
    if (answer.status !== 412 || !(await this.#live(remoteId))) return;
    throw new ProviderError('PRECONDITION_FAILED', `event ${remoteId} changed since etag ${String(etag)}`, {
      status: 412,
    });
  }

  async startWatch(request: WatchRequest): Promise<WatchChannel> {
    const channel = await this.#api.watch({
      id: randomUUID(),
      type: 'web_hook',
      address: request.callbackUrl,
      token: request.secret,
      params: { ttl: String(Math.max(1, Math.floor(request.ttlSeconds))) },
    });
    const expiration = Number(channel.expiration);
    if (typeof channel.id !== 'string' || typeof channel.resourceId !== 'string') {
      throw new ProviderError('BAD_RESPONSE', 'events.watch: the channel has no id or resourceId');
    }
    return {
      id: channel.id,
      resourceId: channel.resourceId,
      expiresAt: Number.isFinite(expiration) ? expiration : Date.now() + request.ttlSeconds * 1000,
    };
  }

  /** Google channels cannot be extended: a new one starts, then the old one stops. */
  async renewWatch(channel: WatchChannel, request: WatchRequest): Promise<WatchChannel> {
    const fresh = await this.startWatch(request);
    try {
      await this.stopWatch(channel);
    } catch (error) {
      // The old channel ends at its expiry anyway; failing here would lose the new one.
      if (!(error instanceof ProviderError)) throw error;
    }
    return fresh;
  }

  async stopWatch(channel: WatchChannel): Promise<void> {
    if (channel.resourceId === null) return;
    await this.#api.stopChannel(channel.id, channel.resourceId);
  }

  /**
   * A full listing. A single event is complete on its page and handed over with it. A series' master
   * and its exceptions may come on any pages, so series wait for the end of the listing (the one part
   * held in memory, as items); a single event an exception turns out to belong to is read again then.
   */
  async *#full(pages: Pages, listing: StreamedListing): ChangeStream {
    const series = new Map<string, Group>();
    for (;;) {
      const step = await pages.next();
      if (step.done) {
        yield* this.#fullSeries(series, listing);
        const syncToken = step.value?.syncToken ?? null;
        return { full: true, cursor: syncToken === null ? null : this.#writeCursor(syncToken) };
      }
      const singles: Listed[] = [];
      for (const item of step.value) {
        if (item.recurringEventId !== undefined || item.recurrence?.length) {
          addToGroups(series, item);
        } else if (item.status !== 'cancelled') {
          const whole = { master: item, exceptions: [] };
          singles.push({ remoteId: item.id, etag: objectEtag(whole), whole });
        }
      }
      // In steps, each rendered as it is handed over: the sync expands and stores one while the next
      // is rendered, and the next events.list page is on its way meanwhile.
      const changed = listing.changedOf(singles);
      for (let at = 0; at < changed.length; at += OBJECTS_PER_STEP) {
        const step = changed.slice(at, at + OBJECTS_PER_STEP);
        yield { changed: step.map((object) => this.#object(object.whole)), removed: [] };
      }
    }
  }

  /** The series of a full listing once it has ended, a page at a time; then what was not listed is gone. */
  async *#fullSeries(series: Map<string, Group>, listing: StreamedListing): AsyncGenerator<ChangePage> {
    let listed: Listed[] = [];
    for (const [id, group] of series) {
      series.delete(id);
      let master = group.master;
      if (master === null) {
        // Exceptions whose master is not listed as a series: a cancelled-only group has nothing to
        // show; otherwise the master is read (a single event on another page, or one not listed).
        if (group.exceptions.every((e) => e.status === 'cancelled')) continue;
        master = await this.#live(id);
        if (master === null) continue;
      }
      if (master.status === 'cancelled') continue;
      const whole = { master, exceptions: group.exceptions };
      listed.push({ remoteId: id, etag: objectEtag(whole), whole });
      if (listed.length >= OBJECTS_PER_STEP) {
        yield { changed: listing.changedOf(listed).map((object) => this.#object(object.whole)), removed: [] };
        listed = [];
      }
    }
    yield {
      changed: listing.changedOf(listed).map((object) => this.#object(object.whole)),
      removed: listing.unlisted(),
    };
  }

  /** An incremental listing, page by page; null when Google refused the sync token. */
  async *#incremental(
    pages: Pages,
    listing: StreamedListing,
  ): AsyncGenerator<ChangePage, ListingEnd | null, undefined> {
    for (;;) {
      const step = await pages.next();
      if (step.done) {
        if (step.value === null) return null;
        const { syncToken } = step.value;
        return { full: false, cursor: syncToken === null ? null : this.#writeCursor(syncToken) };
      }
      const listed: Listed[] = [];
      const removed: string[] = [];
      const groups = new Map<string, Group>();
      for (const item of step.value) addToGroups(groups, item);
      for (const [id, group] of groups) {
        const master = group.master ?? (await this.#api.get(id));
        if (master === null || master.status === 'cancelled') {
          if (group.master !== null || listing.holds(id)) removed.push(id);
          continue;
        }
        const whole = { master, exceptions: await this.#api.exceptionsOf(master) };
        listed.push({ remoteId: id, etag: objectEtag(whole), whole });
      }
      listing.removed(removed);
      yield { changed: listing.changedOf(listed).map((object) => this.#object(object.whole)), removed };
    }
  }

  async #live(id: string): Promise<GoogleEvent | null> {
    const event = await this.#api.get(id);
    return event === null || event.status === 'cancelled' ? null : event;
  }

  #object(group: EventGroup): RemoteEvent {
    return { remoteId: group.master.id, etag: objectEtag(group), ics: renderGroup(group) };
  }

  async #written(event: GoogleEvent): Promise<WrittenEvent> {
    if (!event.recurrence?.length) return written(event);
    return {
      remoteId: event.id,
      etag: objectEtag({ master: event, exceptions: await this.#api.exceptionsOf(event) }),
    };
  }

  #readCursor(cursor: string | null): string | null {
    if (!cursor) return null;
    try {
      const state = JSON.parse(cursor) as Partial<CursorState> | null;
      if (state?.v !== 1 || state.c !== this.#calendarId || typeof state.t !== 'string') return null;
      return state.t;
    } catch {
      return null;
    }
  }

  #writeCursor(token: string): string {
    const state: CursorState = { v: 1, c: this.#calendarId, t: token };
    return JSON.stringify(state);
  }
}

type Group = { master: GoogleEvent | null; exceptions: GoogleEvent[] };
type Listed = { remoteId: string; etag: string | null; whole: EventGroup };
type Pages = AsyncGenerator<GoogleEvent[], { syncToken: string | null } | null, undefined>;

/**
 * Objects of a full listing handed over per step: about one parser task's worth, so that rendering,
 * expanding and storing a large events.list page overlap rather than follow each other.
 */
const OBJECTS_PER_STEP = 200;

/** A listed item into the group of the object it belongs to: a master (or single event) and its exceptions. */
function addToGroups(groups: Map<string, Group>, item: GoogleEvent): void {
  const id = item.recurringEventId ?? item.id;
  let group = groups.get(id);
  if (!group) groups.set(id, (group = { master: null, exceptions: [] }));
  if (item.recurringEventId === undefined) group.master = item;
  else group.exceptions.push(item);
}

function isBookingEvent(event: GoogleEvent, uid: string, bookingId: string): boolean {
  const tags = event.extendedProperties?.private;
  return (
    event.iCalUID === uid || tags?.[BOOKING_PROPERTY] === bookingId || tags?.[SERIES_PROPERTY] === bookingId
  );
}

type SeriesOccurrence = OutgoingSeries['occurrences'][number];

function seriesZone(series: OutgoingSeries): string {
  return isValidTimeZone(series.timeZone) ? series.timeZone : 'UTC';
}

function firstInstance(series: OutgoingSeries): SeriesOccurrence | undefined {
  return [...series.occurrences].sort((a, b) => a.recurrenceId - b.recurrenceId)[0];
}

/** Whether an occurrence differs from what the rule gives it (the first instance's duration and text). */
function isOverride(occurrence: SeriesOccurrence, first: SeriesOccurrence): boolean {
  return (
    occurrence.startsAt !== occurrence.recurrenceId ||
    occurrence.endsAt - occurrence.startsAt !== first.endsAt - first.startsAt ||
    occurrence.title !== first.title ||
    (occurrence.description ?? '') !== (first.description ?? '')
  );
}

/** 20261014T070000Z: the UTC basic form Google's instance ids end with. */
function compactUtc(epochMs: number): string {
  return new Date(epochMs)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** A wall time in `zone` in the basic form of an EXDATE;TZID value. */
function wallBasic(epochMs: number, zone: string): string {
  return Temporal.Instant.fromEpochMilliseconds(epochMs)
    .toZonedDateTimeISO(zone)
    .toPlainDateTime()
    .toString({ smallestUnit: 'second' })
    .replace(/[-:]/g, '');
}

/**
 * A series master as a PATCH body: the first instance's times in the series' zone, the rule, and the
 * cancelled occurrences as one EXDATE line in that zone.
 */
function seriesBody(series: OutgoingSeries): Record<string, unknown> {
  const zone = seriesZone(series);
  const first = firstInstance(series);
  if (!first) throw new ProviderError('REJECTED', `series ${series.seriesId} has no occurrence`);
  const duration = first.endsAt - first.startsAt;
  const recurrence = [`RRULE:${recurValue(series.rule)}`];
  const cancelled = series.occurrences
    .filter((o) => o.status === 'cancelled')
    .map((o) => wallBasic(o.recurrenceId, zone))
    .sort();
  if (cancelled.length > 0) recurrence.push(`EXDATE;TZID=${zone}:${cancelled.join(',')}`);
  return {
    summary: first.title,
    description: first.description ?? null,
    start: { dateTime: formatInstant(first.recurrenceId, zone), timeZone: zone },
    end: { dateTime: formatInstant(first.recurrenceId + duration, zone), timeZone: zone },
    recurrence,
    status: 'confirmed',
    transparency: 'opaque',
    extendedProperties: {
      private: { [BOOKING_PROPERTY]: first.bookingId, [SERIES_PROPERTY]: series.seriesId },
    },
  };
}

function written(event: GoogleEvent): WrittenEvent {
  if (typeof event?.id !== 'string') throw new ProviderError('BAD_RESPONSE', 'the written event has no id');
  return { remoteId: event.id, etag: event.etag ?? null };
}

function notFound(remoteId: string): ProviderError {
  return new ProviderError('NOT_FOUND', `event ${remoteId} does not exist`, { status: 404 });
}

/**
 * The fields Sched owns, as a PATCH body: anything else a user set (reminders, colour, conference
 * data) stays. No `sequence`: Google raises it itself and refuses one below its own.
 */
function eventBody(event: OutgoingEvent): Record<string, unknown> {
  const zone = isValidTimeZone(event.timeZone) ? event.timeZone : 'UTC';
  return {
    summary: event.title,
    description: event.description ?? null,
    start: { dateTime: formatInstant(event.startsAt, zone), timeZone: zone },
    end: { dateTime: formatInstant(event.endsAt, zone), timeZone: zone },
    attendees: event.attendees.map((a) => ({ email: a.email, ...(a.name ? { displayName: a.name } : {}) })),
    status: event.status === 'cancelled' ? 'cancelled' : 'confirmed',
    transparency: 'opaque',
    extendedProperties: { private: { [BOOKING_PROPERTY]: event.bookingId } },
  };
}
