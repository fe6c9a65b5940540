import { randomBytes } from 'node:crypto';
import { errors, GoogleApiError } from './errors.js';
import { EVENT_ID, type EventFields, mergeExtendedProperties, readFields } from './event-input.js';
import { expandSeries, instanceKey, spanOf, type ExpandLimits } from './recurrence.js';
import { formatUtcMillis, fromWall, MS_PER_DAY, wallOfDate } from './time.js';
import type { Calendar, GoogleEvent, StoredEvent } from './types.js';

const BASE32HEX = '0123456789abcdefghijklmnopqrstuv';
const INSTANCE_ID = /^(.+)_(\d{8})(?:T(\d{6})Z)?$/;

export function randomEventId(length = 26): string {
  return [...randomBytes(length)].map((byte) => BASE32HEX[byte % 32]).join('');
}

export type WriteOptions = { ifMatch?: string | undefined; sendUpdates?: string | undefined };

/** Calendars and their events, with Google's write semantics; every committed change is announced. */
export class EventStore {
  readonly calendars = new Map<string, Calendar>();
  #seq = 0;
  #lastEtag = 0;

  constructor(
    private readonly now: () => number,
    private readonly onChange: (calendarId: string) => void,
    readonly primaryId: string,
  ) {
    this.reset();
  }

  reset(): void {
    this.calendars.clear();
    this.createCalendar({ id: this.primaryId, summary: this.primaryId });
  }

  /** The change-log position the next sync token is issued at. */
  get seq(): number {
    return this.#seq;
  }

  createCalendar(input: { id?: string; summary?: string; timeZone?: string } = {}): Calendar {
    const id = input.id ?? `c_${randomEventId(20)}@group.calendar.google.com`;
    const calendar: Calendar = {
      id,
      summary: input.summary ?? id,
      timeZone: input.timeZone ?? 'UTC',
      events: new Map(),
      generation: 0,
      purgedThrough: 0,
    };
    this.calendars.set(id, calendar);
    return calendar;
  }

  calendar(id: string): Calendar {
    const calendar = this.calendars.get(id === 'primary' ? this.primaryId : id);
    if (!calendar) throw errors.notFound();
    return calendar;
  }

  get(calendar: Calendar, eventId: string): GoogleEvent {
    const found = this.#find(calendar, eventId);
    if (!found) throw errors.notFound();
    return found.stored?.body ?? found.virtual!;
  }

  insert(calendar: Calendar, input: Record<string, unknown>, options: WriteOptions = {}): GoogleEvent {
    let id: string;
    if (input.id === undefined) id = randomEventId();
    else if (typeof input.id !== 'string' || !EVENT_ID.test(input.id)) {
      throw errors.badRequest('Invalid resource id value.', 'id');
    } else id = input.id;
    if (this.#find(calendar, id)) throw errors.duplicate();
    const givenUid = typeof input.iCalUID === 'string' && input.iCalUID !== '';
    // Without one, the iCalUID is made from the id: `<id>@google.com`, as Google's events show.
    const iCalUID = givenUid ? (input.iCalUID as string) : `${id}@google.com`;
    for (const other of calendar.events.values()) {
      if (!other.deleted && !other.body.recurringEventId && other.body.iCalUID === iCalUID) {
        throw errors.duplicate();
      }
    }
    const fields = readFields(input, calendar.timeZone, null);
    checkRange(fields, calendar.timeZone);
    const now = formatUtcMillis(this.now());
    const body: GoogleEvent = {
      kind: 'calendar#event',
      etag: '',
      id,
      status: 'confirmed',
      htmlLink: `https://www.google.com/calendar/event?eid=${Buffer.from(id).toString('base64url')}`,
      created: now,
      updated: now,
      creator: { email: calendar.id, self: true },
      organizer: { email: calendar.id, self: true },
      iCalUID,
      sequence: 0,
      reminders: { useDefault: true },
      eventType: 'default',
      ...defined(fields),
    };
    const stored: StoredEvent = {
      body,
      changeSeq: 0,
      createdSeq: 0,
      deleted: body.status === 'cancelled',
      insertedWith: { id: input.id !== undefined, iCalUID: givenUid },
    };
    if (options.sendUpdates !== undefined) stored.sendUpdates = options.sendUpdates;
    stored.createdSeq = this.#seq + 1;
    this.#commit(calendar, [stored]);
    return body;
  }

  /** events.update (patch: false) and events.patch; on an instance id this makes an exception. */
  write(
    calendar: Calendar,
    eventId: string,
    input: Record<string, unknown>,
    patch: boolean,
    options: WriteOptions = {},
  ): GoogleEvent {
    const found = this.#find(calendar, eventId);
    if (!found) throw errors.notFound();
    const current = found.stored?.body ?? found.virtual!;
    checkIfMatch(options.ifMatch, current.etag);
    const fields = readFields(input, calendar.timeZone, patch ? current : null);
    if (current.recurringEventId !== undefined) delete fields.recurrence;
    const sequence = nextSequence(current, fields);
    const extendedProperties = patch
      ? mergeExtendedProperties(current.extendedProperties, input.extendedProperties)
      : fields.extendedProperties;
    // A PUT is a full replacement: a deleted event written without a status comes back confirmed.
    const base: GoogleEvent = patch
      ? { ...current }
      : {
          ...pick(current, [
            'kind',
            'id',
            'iCalUID',
            'created',
            'creator',
            'organizer',
            'eventType',
            'htmlLink',
          ]),
          ...pick(current, ['recurringEventId', 'originalStartTime']),
          etag: current.etag,
          status: 'confirmed',
          sequence: current.sequence,
          reminders: { useDefault: true },
        };
    const body: GoogleEvent = { ...base, ...defined(fields), sequence };
    if (extendedProperties === undefined) delete body.extendedProperties;
    else body.extendedProperties = extendedProperties;
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) delete (body as Record<string, unknown>)[key];
    }
    checkRange(body, calendar.timeZone);
    const stored = found.stored ?? { body, changeSeq: 0, createdSeq: this.#seq + 1, deleted: false };
    stored.body = body;
    if (options.sendUpdates !== undefined) stored.sendUpdates = options.sendUpdates;
    const touched = [stored];
    stored.deleted = body.status === 'cancelled' && body.recurringEventId === undefined;
    if (stored.deleted) touched.push(...this.#cancelExceptions(calendar, body.id));
    this.#commit(calendar, touched);
    return body;
  }

  remove(calendar: Calendar, eventId: string, options: WriteOptions = {}): void {
    const found = this.#find(calendar, eventId);
    if (!found) throw errors.notFound();
    const current = found.stored?.body ?? found.virtual!;
    if (current.status === 'cancelled') throw errors.deleted();
    checkIfMatch(options.ifMatch, current.etag);
    const stored = found.stored ?? {
      body: { ...current },
      changeSeq: 0,
      createdSeq: this.#seq + 1,
      deleted: false,
    };
    stored.body.status = 'cancelled';
    if (options.sendUpdates !== undefined) stored.sendUpdates = options.sendUpdates;
    const touched = [stored];
    if (stored.body.recurringEventId === undefined) {
      stored.deleted = true;
      touched.push(...this.#cancelExceptions(calendar, stored.body.id));
    }
    this.#commit(calendar, touched);
  }

  /** A series' instances (exceptions in place of generated ones, cancelled ones included), by start. */
  instances(calendar: Calendar, master: GoogleEvent, limits: ExpandLimits = {}): GoogleEvent[] {
    const exceptions = new Map<string, GoogleEvent>();
    for (const stored of calendar.events.values()) {
      if (stored.body.recurringEventId !== master.id || !stored.body.originalStartTime) continue;
      const key = instanceKey(stored.body.originalStartTime);
      if (key) exceptions.set(key, stored.body);
    }
    const out: { event: GoogleEvent; at: number }[] = [];
    for (const instance of expandSeries(master, calendar.timeZone, limits)) {
      const exception = exceptions.get(instance.key);
      exceptions.delete(instance.key);
      out.push({ event: exception ?? virtualInstance(master, instance), at: instance.startMs });
    }
    for (const exception of exceptions.values()) {
      const at = spanOf(
        { start: exception.originalStartTime, end: exception.originalStartTime },
        calendar.timeZone,
      );
      if (at && (limits.until === undefined || at.startMs < limits.until)) {
        out.push({ event: exception, at: at.startMs });
      }
    }
    return out.sort((a, b) => a.at - b.at).map((entry) => entry.event);
  }

  expireSyncTokens(calendar: Calendar): void {
    calendar.generation++;
  }

  /** Tombstones vanish; tokens issued before the newest of them can no longer be answered. */
  purgeTombstones(calendar: Calendar): number {
    let purged = 0;
    for (const [id, stored] of calendar.events) {
      if (!stored.deleted) continue;
      calendar.events.delete(id);
      calendar.purgedThrough = Math.max(calendar.purgedThrough, stored.changeSeq);
      purged++;
    }
    return purged;
  }

  #find(calendar: Calendar, eventId: string): { stored?: StoredEvent; virtual?: GoogleEvent } | null {
    const stored = calendar.events.get(eventId);
    if (stored) return { stored };
    const match = INSTANCE_ID.exec(eventId);
    if (!match) return null;
    const master = calendar.events.get(match[1]!);
    if (!master || master.deleted || !master.body.recurrence?.length) return null;
    const [, , date, time] = match;
    const day = `${date!.slice(0, 4)}-${date!.slice(4, 6)}-${date!.slice(6, 8)}`;
    const until = fromWall(wallOfDate(day), calendar.timeZone) + 2 * MS_PER_DAY;
    const key = time === undefined ? date : `${date}T${time}Z`;
    const instance = expandSeries(master.body, calendar.timeZone, { until }).find((i) => i.key === key);
    return instance ? { virtual: virtualInstance(master.body, instance) } : null;
  }

  #cancelExceptions(calendar: Calendar, masterId: string): StoredEvent[] {
    const out: StoredEvent[] = [];
    for (const stored of calendar.events.values()) {
      if (stored.body.recurringEventId !== masterId) continue;
      stored.body.status = 'cancelled';
      stored.deleted = true;
      out.push(stored);
    }
    return out;
  }

  #commit(calendar: Calendar, touched: StoredEvent[]): void {
    const updated = formatUtcMillis(this.now());
    for (const stored of touched) {
      stored.changeSeq = ++this.#seq;
      stored.body.etag = this.#newEtag();
      stored.body.updated = updated;
      calendar.events.set(stored.body.id, stored);
    }
    this.onChange(calendar.id);
  }

  #newEtag(): string {
    this.#lastEtag = Math.max(this.#lastEtag + 1, this.now() * 1000);
    return `"${this.#lastEtag}"`;
  }
}

function virtualInstance(
  master: GoogleEvent,
  instance: ReturnType<typeof expandSeries>[number],
): GoogleEvent {
  const { recurrence: _recurrence, ...rest } = master;
  return {
    ...rest,
    id: `${master.id}_${instance.key}`,
    recurringEventId: master.id,
    originalStartTime: instance.originalStartTime,
    start: instance.start,
    end: instance.end,
  };
}

function checkIfMatch(ifMatch: string | undefined, etag: string): void {
  if (ifMatch === undefined || ifMatch === '*') return;
  const wanted = ifMatch.split(',').map((tag) => tag.trim().replace(/^W\//, ''));
  if (!wanted.includes(etag)) throw errors.conditionNotMet();
}

function checkRange(event: Pick<GoogleEvent, 'start' | 'end'>, zone: string): void {
  const span = spanOf(event, zone);
  if (span && span.endMs < span.startMs) throw errors.timeRangeEmpty();
}

/** Google raises the sequence when times move and refuses a client sequence below its own. */
function nextSequence(current: GoogleEvent, fields: EventFields): number {
  if (fields.sequence !== undefined) {
    if (fields.sequence < current.sequence) {
      throw new GoogleApiError(400, {
        domain: 'global',
        reason: 'invalid',
        message:
          'Invalid sequence value. The specified sequence number is below the current sequence number of the resource.',
        locationType: 'parameter',
        location: 'sequence',
      });
    }
    return fields.sequence;
  }
  const moved =
    (fields.start !== undefined && JSON.stringify(fields.start) !== JSON.stringify(current.start)) ||
    (fields.end !== undefined && JSON.stringify(fields.end) !== JSON.stringify(current.end));
  return moved ? current.sequence + 1 : current.sequence;
}

function defined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as Partial<T>;
}

function pick<K extends keyof GoogleEvent>(event: GoogleEvent, keys: K[]): Pick<GoogleEvent, K> {
  const out = {} as Pick<GoogleEvent, K>;
  for (const key of keys) if (event[key] !== undefined) out[key] = event[key];
  return out;
}
