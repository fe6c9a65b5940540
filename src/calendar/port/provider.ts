/**
 * The port every calendar system implements (CalDAV, ICS feeds, Google, Outlook). The sync engine
 * (services/calendar-sync.ts) only ever talks to this interface.
 *
 * Events cross the port as iCalendar text: CalDAV and ICS store it natively, and the Google and Graph
 * adapters render their JSON into VEVENTs (their recurrence fields are RFC 5545 rules already), so one
 * parser and one recurrence expander serve every provider.
 */

import type { OutgoingEvent } from '../../ical/outgoing-event.js';
import type { OutgoingSeries } from '../../ical/render-series.js';

/** One object stored at the provider: a single event, or a recurring series with its overrides. */
export type RemoteEvent = {
  /** The provider's stable name for the object: a CalDAV href, an ICS UID, a Google event id. */
  remoteId: string;
  /** Version tag for conditional writes and change detection; null where the provider has none. */
  etag: string | null;
  /** A VCALENDAR holding the object's VEVENTs (a master and its RECURRENCE-ID overrides). */
  ics: string;
};

export type RemoteChanges = {
  /** Objects created or changed since the cursor (or whose etag differs from the known one). */
  changed: RemoteEvent[];
  /** remoteIds that no longer exist at the provider. */
  removed: string[];
  /** True when the provider had to list the whole calendar (no cursor, or the cursor was refused). */
  full: boolean;
  /** The cursor for the next call, or null where the provider has no incremental listing. */
  cursor: string | null;
  /**
   * What a full read noticed about the calendar as a whole (components ignored, duplicate UIDs, time
   * zones that did not parse); absent where the provider has nothing to say or read nothing new.
   */
  warnings?: string[];
};

/**
 * One page of a listing, handed over as soon as it is read: a sync stores each page while the next is
 * fetched, so a calendar is never held in memory whole.
 */
export type ChangePage = {
  /** Objects created or changed (or whose etag differs from the stored one), each once per page. */
  changed: RemoteEvent[];
  /** remoteIds that no longer exist at the provider. */
  removed: string[];
};

/** How a listing ended: what the caller keeps once it has applied every page. */
export type ListingEnd = Omit<RemoteChanges, 'changed' | 'removed'>;

/**
 * A listing page by page; its return value is the listing's end. Pages are applied in order: a later
 * page may hand over an object again (the later version wins), and its removals may name an object an
 * earlier page of the same listing handed over. Only a listing that ran to its end has a cursor to keep.
 */
export type ChangeStream = AsyncGenerator<ChangePage, ListingEnd, undefined>;

/** What the engine has stored: remoteId → etag (null where the provider gave none). */
export type KnownEvents = ReadonlyMap<string, string | null>;

/** What Sched writes for a booking (the iCalendar writer's input). Adapters render it in their own format. */
export type { OutgoingEvent } from '../../ical/outgoing-event.js';

/** What Sched writes for a recurring booking: its rule, its zone and every occurrence it ever had. */
export type { OutgoingSeries } from '../../ical/render-series.js';

export type ProviderCapabilities = {
  /** Whether events can be created, changed and deleted (false for ICS feeds). */
  write: boolean;
  /** Whether listChanges can answer incrementally from a cursor. */
  incremental: boolean;
  /** Whether the provider can call us back on change (Google watch channels, Graph subscriptions). */
  push: boolean;
  /**
   * Whether a recurring booking can be written as one recurring event with its exceptions
   * (`SeriesCapable`). Without it each occurrence is written as an event of its own.
   */
  supportsRecurrence?: boolean;
};

export type WrittenEvent = { remoteId: string; etag: string | null };

export interface CalendarProvider {
  readonly capabilities: ProviderCapabilities;

  /**
   * Changes since `cursor`, page by page as they are read. A null cursor, or one the provider refuses,
   * means a full listing: the provider then compares it with `known` and reports only what differs,
   * deletions included (at the latest on the last page), and says `full: true`. Adapters fetch bodies
   * only for objects whose etag differs from `known`. `known` is read when the listing starts.
   */
  readChanges(cursor: string | null, known: KnownEvents): ChangeStream;

  /** The same listing gathered into one answer (`collectChanges`), for tools and tests. */
  listChanges(cursor: string | null, known: KnownEvents): Promise<RemoteChanges>;

  /** Reads one object; null when it does not exist. */
  getEvent(remoteId: string): Promise<RemoteEvent | null>;

  /**
   * Finds the object holding this UID; null when there is none. Used to clean up after a create
   * whose answer was lost (the object may exist although its remoteId was never learnt).
   */
  findEvent(uid: string): Promise<RemoteEvent | null>;

  /**
   * Creates the event. Idempotent: a retry after a lost answer finds the object made by the first
   * attempt (same UID) and returns it rather than making a second one.
   */
  createEvent(event: OutgoingEvent): Promise<WrittenEvent>;

  /**
   * Replaces the event. With an etag the write is conditional and a mismatch throws ProviderError
   * `PRECONDITION_FAILED`; a missing object throws `NOT_FOUND`.
   */
  updateEvent(remoteId: string, etag: string | null, event: OutgoingEvent): Promise<WrittenEvent>;

  /** Deletes the event; conditional like updateEvent. Deleting what is already gone succeeds. */
  deleteEvent(remoteId: string, etag: string | null): Promise<void>;
}

/**
 * Optional capability of providers that take a series as one recurring event
 * (capabilities.supportsRecurrence). The object carries the series' UID, `<series id>@sched`; a
 * series whose every occurrence is cancelled is removed with deleteEvent.
 */
export interface SeriesCapable {
  /** Creates the recurring event; idempotent on the series' UID like createEvent. */
  createSeries(series: OutgoingSeries): Promise<WrittenEvent>;
  /**
   * Replaces the recurring event and its exceptions; conditional like updateEvent (`PRECONDITION_FAILED`
   * on an etag mismatch, `NOT_FOUND` when it is gone).
   */
  updateSeries(remoteId: string, etag: string | null, series: OutgoingSeries): Promise<WrittenEvent>;
}

export function canWriteSeries(provider: CalendarProvider): provider is CalendarProvider & SeriesCapable {
  const candidate = provider as Partial<SeriesCapable>;
  return (
    provider.capabilities.supportsRecurrence === true &&
    typeof candidate.createSeries === 'function' &&
    typeof candidate.updateSeries === 'function'
  );
}

/** A push channel: a Google watch channel or a Graph subscription. */
export type WatchChannel = {
  /** Google's channel id (ours to choose) or Graph's subscription id. */
  id: string;
  /** Google's resourceId, needed to stop the channel; null for Graph. */
  resourceId: string | null;
  /** When the provider stops sending, epoch ms. */
  expiresAt: number;
};

export type WatchRequest = {
  /** Where change notifications go: SCHED_PUBLIC_URL + /hooks/google or /hooks/outlook. */
  callbackUrl: string;
  /** Where Graph sends lifecycle notifications: SCHED_PUBLIC_URL + /hooks/outlook/lifecycle. */
  lifecycleUrl: string;
  /** Echoed with every notification (Google channel token, Graph clientState); checked on arrival. */
  secret: string;
  /** Lifetime asked for; the provider may grant less (see expiresAt). */
  ttlSeconds: number;
};

/** Optional capability of providers that call back on change (capabilities.push). */
export interface PushCapable {
  startWatch(request: WatchRequest): Promise<WatchChannel>;
  /**
   * Keeps notifications coming past expiry. May return a different channel: Google channels cannot
   * be extended (a new one replaces the old), and a Graph subscription that answers 404 is recreated.
   */
  renewWatch(channel: WatchChannel, request: WatchRequest): Promise<WatchChannel>;
  /** Stops the channel; one already gone is not an error. */
  stopWatch(channel: WatchChannel): Promise<void>;
}

export function canPush(provider: CalendarProvider): provider is CalendarProvider & PushCapable {
  const candidate = provider as Partial<PushCapable>;
  return (
    provider.capabilities.push &&
    typeof candidate.startWatch === 'function' &&
    typeof candidate.renewWatch === 'function' &&
    typeof candidate.stopWatch === 'function'
  );
}

/**
 * Access tokens for OAuth providers. The adapter asks before each request (cheap: cached until close
 * to expiry) and asks with forceRefresh once after a 401; a refused refresh throws ProviderError
 * AUTH_FAILED.
 */
export interface AccessTokenSource {
  get(options?: { forceRefresh?: boolean }): Promise<string>;
}

/** Every page of a listing gathered into one answer, as the pages would leave a store that applied them. */
export async function collectChanges(stream: ChangeStream): Promise<RemoteChanges> {
  const changed = new Map<string, RemoteEvent>();
  const removed = new Set<string>();
  for (;;) {
    const step = await stream.next();
    if (step.done) return { ...step.value, changed: [...changed.values()], removed: [...removed] };
    for (const event of step.value.changed) {
      changed.set(event.remoteId, event);
      removed.delete(event.remoteId);
    }
    for (const remoteId of step.value.removed) {
      changed.delete(remoteId);
      removed.add(remoteId);
    }
  }
}
