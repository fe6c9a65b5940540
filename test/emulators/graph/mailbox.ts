import { randomBytes, randomUUID } from 'node:crypto';
import type { Temporal } from 'temporal-polyfill';
import type { EventFields, EventInput, ExtendedProperty } from './event-input.js';
import { badRequest, GraphError, notFound } from './graph-error.js';
import { type ItemKey, newChangeKey, newEventKey } from './ids.js';
import { occurrenceAt, occurrencesOf, overlaps, wholeInstance } from './instances.js';
import { type PatternedRecurrence, RecurrenceError, validateRecurrence } from './recurrence.js';
import { isMidnight, toInstant, wallOf } from './times.js';

export type Calendar = { id: string; name: string; hexColor: string; isDefault: boolean; changeKey: string };

type Exception = { fields: Partial<EventFields>; changeKey: string; modified: number };

export type StoredEvent = EventFields & {
  id: string;
  calendarId: string;
  /** Changes with every change to the item, its exceptions and cancellations included. */
  changeKey: string;
  /** What plain occurrences carry: changes only when the series itself changes. */
  seriesChangeKey: string;
  created: number;
  modified: number;
  iCalUId: string;
  transactionId: string | null;
  recurrence: PatternedRecurrence | null;
  extended: ExtendedProperty[];
  exceptions: Map<number, Exception>;
  cancelled: Set<number>;
  /** Mailbox change sequence at the item's last change. */
  seq: number;
};

export type InstanceType = 'singleInstance' | 'occurrence' | 'exception' | 'seriesMaster';

export type Instance = {
  key: ItemKey;
  event: StoredEvent;
  type: InstanceType;
  fields: EventFields;
  start: number;
  end: number;
  /** All-day instances are dates, not instants. */
  days: { start: Temporal.PlainDate; end: Temporal.PlainDate } | null;
  changeKey: string;
  modified: number;
};

export type Change = {
  calendarId: string;
  key: ItemKey;
  changeType: 'created' | 'updated' | 'deleted';
  changeKey: string | null;
};

export type Precondition = string | null;

const DEFAULT_FIELDS: Omit<EventFields, 'start' | 'end'> = {
  subject: '',
  body: { contentType: 'text', content: '' },
  isAllDay: false,
  showAs: 'busy',
  sensitivity: 'normal',
  importance: 'normal',
  isCancelled: false,
  isReminderOn: true,
  reminderMinutesBeforeStart: 15,
  location: { displayName: '' },
  attendees: [],
  categories: [],
};

const TIME_FIELDS = ['start', 'end', 'isAllDay'] as const;

/** Exchange's GlobalObjectId as Graph shows it: hex, unique per item. */
function newICalUId(): string {
  return `040000008200E00074C5B7101A82E00800000000${randomBytes(24).toString('hex').toUpperCase()}`;
}

export class Mailbox {
  readonly userId = randomUUID();
  readonly tenantId = randomUUID();
  readonly calendars = new Map<string, Calendar>();
  readonly events = new Map<string, StoredEvent>();
  /** Deleted items and when, for the out-of-window removals delta reports. */
  readonly tombstones = new Map<string, { calendarId: string; seq: number }>();
  readonly listeners: ((change: Change) => void)[] = [];
  seq = 0;
  transactionIdWindowMs = 24 * 3_600_000;

  constructor(readonly clock: () => number) {
    this.createCalendar('Calendar', true);
  }

  get defaultCalendar(): Calendar {
    return [...this.calendars.values()].find((c) => c.isDefault)!;
  }

  createCalendar(name: string, isDefault = false): Calendar {
    const calendar = {
      id: `AAMkAGCal${randomBytes(12).toString('base64url')}`,
      name,
      hexColor: '',
      isDefault,
      changeKey: newChangeKey(),
    };
    this.calendars.set(calendar.id, calendar);
    return calendar;
  }

  calendar(id: string): Calendar {
    const calendar = id === 'primary' ? this.defaultCalendar : this.calendars.get(id);
    if (!calendar) throw new GraphError(404, 'ErrorItemNotFound', 'The specified calendar was not found.');
    return calendar;
  }

  deleteCalendar(id: string): void {
    const calendar = this.calendar(id);
    if (calendar.isDefault)
      throw new GraphError(400, 'ErrorCannotDeleteObject', 'The default calendar cannot be deleted.');
    for (const event of [...this.events.values()]) if (event.calendarId === id) this.#remove(event);
    this.calendars.delete(id);
  }

  createEvent(
    calendarId: string,
    input: EventInput,
    extra: { iCalUId?: string } = {},
  ): { event: StoredEvent; created: boolean } {
    const calendar = this.calendar(calendarId);
    const now = this.clock();
    if (input.transactionId) {
      const earlier = [...this.events.values()].find(
        (e) =>
          e.calendarId === calendar.id &&
          e.transactionId === input.transactionId &&
          now - e.created < this.transactionIdWindowMs,
      );
      if (earlier) return { event: earlier, created: false };
    }
    const { start, end } = input.fields;
    if (!start || !end)
      throw badRequest('An event needs a start and an end.', 'ErrorPropertyValidationFailure');
    const changeKey = newChangeKey();
    const event: StoredEvent = {
      ...DEFAULT_FIELDS,
      ...input.fields,
      start,
      end,
      id: newEventKey(),
      calendarId: calendar.id,
      changeKey,
      seriesChangeKey: changeKey,
      created: now,
      modified: now,
      iCalUId: extra.iCalUId ?? newICalUId(),
      transactionId: input.transactionId ?? null,
      recurrence: null,
      extended: input.extended ?? [],
      exceptions: new Map(),
      cancelled: new Set(),
      seq: ++this.seq,
    };
    event.recurrence = this.#recurrence(event, input);
    this.#checkTimes(event);
    this.events.set(event.id, event);
    this.#emit(event, { eventId: event.id, originalStart: null }, 'created', changeKey);
    return { event, created: true };
  }

  /** The event or occurrence a key names; 404 when it does not exist (or not in `calendarId`). */
  instance(key: ItemKey, calendarId: string | null = null): Instance {
    const event = this.events.get(key.eventId);
    if (!event || (calendarId !== null && event.calendarId !== calendarId)) throw notFound();
    if (key.originalStart === null) return wholeInstance(event);
    const found =
      event.recurrence && !event.cancelled.has(key.originalStart)
        ? occurrenceAt(event, key.originalStart)
        : null;
    if (!found) throw notFound();
    return found;
  }

  updateEvent(key: ItemKey, input: EventInput, ifMatch: Precondition): Instance {
    const target = this.instance(key);
    this.#checkPrecondition(target, ifMatch);
    const event = target.event;
    const now = this.clock();
    if (input.transactionId !== undefined && input.transactionId !== event.transactionId) {
      throw badRequest('transactionId cannot be changed.', 'ErrorInvalidPropertyForOperation');
    }
    if (key.originalStart !== null) {
      if (input.recurrence !== undefined) throw badRequest('An occurrence cannot carry a recurrence.');
      const previous = event.exceptions.get(key.originalStart);
      const exception = {
        fields: { ...previous?.fields, ...input.fields },
        changeKey: newChangeKey(),
        modified: now,
      };
      const merged = { ...event, ...exception.fields };
      this.#checkTimes(merged);
      event.exceptions.set(key.originalStart, exception);
      this.#touch(event, false);
      this.#emit(event, key, 'updated', exception.changeKey);
      return this.instance(key);
    }
    const before = JSON.stringify(TIME_FIELDS.map((f) => event[f]));
    const next: StoredEvent = { ...event, ...input.fields };
    if (input.extended) {
      const ids = new Set(input.extended.map((p) => p.id.toLowerCase()));
      next.extended = [...event.extended.filter((p) => !ids.has(p.id.toLowerCase())), ...input.extended];
    }
    if (input.recurrence !== undefined) next.recurrence = this.#recurrence(next, input);
    else if (next.recurrence) {
      // A series whose start moves takes its range start along, as Outlook's own editor does.
      const startDate = wallOf(next.start).toPlainDate().toString();
      next.recurrence = { ...next.recurrence, range: { ...next.recurrence.range, startDate } };
    }
    this.#checkTimes(next);
    // Outlook drops a series' exceptions when its times or pattern change.
    if (input.recurrence !== undefined || before !== JSON.stringify(TIME_FIELDS.map((f) => next[f]))) {
      next.exceptions = new Map();
      next.cancelled = new Set();
    }
    Object.assign(event, next);
    this.#touch(event, true);
    this.#emit(event, key, 'updated', event.changeKey);
    return wholeInstance(event);
  }

  deleteEvent(key: ItemKey, ifMatch: Precondition): void {
    const target = this.instance(key);
    this.#checkPrecondition(target, ifMatch);
    const event = target.event;
    if (key.originalStart === null) {
      this.#remove(event);
      return;
    }
    event.exceptions.delete(key.originalStart);
    event.cancelled.add(key.originalStart);
    this.#touch(event, false);
    this.#emit(event, key, 'deleted', null);
  }

  /** Moves an item to another calendar, as a user dragging it in Outlook does. */
  moveEvent(key: ItemKey, calendarId: string): StoredEvent {
    const event = this.instance({ eventId: key.eventId, originalStart: null }).event;
    const target = this.calendar(calendarId);
    this.#emit(event, { eventId: event.id, originalStart: null }, 'deleted', null);
    event.calendarId = target.id;
    this.#touch(event, true);
    this.#emit(event, { eventId: event.id, originalStart: null }, 'created', event.changeKey);
    return event;
  }

  /** Singles and series masters of a calendar (what /events lists). */
  items(calendarId: string): Instance[] {
    const id = this.calendar(calendarId).id;
    return [...this.events.values()].filter((e) => e.calendarId === id).map((e) => wholeInstance(e));
  }

  /** Singles, occurrences and exceptions overlapping [from, to) (what calendarView lists). */
  instancesIn(calendarId: string, from: number, to: number, withMasters = false): Instance[] {
    const out: Instance[] = [];
    for (const whole of this.items(calendarId)) {
      const event = whole.event;
      if (!event.recurrence) {
        if (overlaps(whole.start, whole.end, from, to)) out.push(whole);
        continue;
      }
      const instances = occurrencesOf(event, to).filter((i) => overlaps(i.start, i.end, from, to));
      if (withMasters && instances.length > 0) out.push(whole);
      out.push(...instances);
    }
    return out.sort((a, b) => a.start - b.start || a.end - b.end);
  }

  #recurrence(event: StoredEvent, input: EventInput): PatternedRecurrence | null {
    if (input.recurrence === undefined) return event.recurrence;
    if (input.recurrence === null) return null;
    try {
      return validateRecurrence(input.rawRecurrence, wallOf(event.start).toPlainDate().toString());
    } catch (error) {
      if (error instanceof RecurrenceError) throw badRequest(error.message, 'ErrorPropertyValidationFailure');
      throw error;
    }
  }

  #checkTimes(event: Pick<StoredEvent, 'start' | 'end' | 'isAllDay'>): void {
    if (toInstant(event.end) < toInstant(event.start)) {
      throw badRequest('The end of an event cannot be before its start.', 'ErrorPropertyValidationFailure');
    }
    if (!event.isAllDay) return;
    if (!isMidnight(event.start) || !isMidnight(event.end) || event.start.timeZone !== event.end.timeZone) {
      throw badRequest(
        'An all-day event must start and end at midnight in the same time zone.',
        'ErrorPropertyValidationFailure',
      );
    }
    if (toInstant(event.end) <= toInstant(event.start)) {
      throw badRequest('An all-day event must last at least one day.', 'ErrorPropertyValidationFailure');
    }
  }

  #checkPrecondition(target: Instance, ifMatch: Precondition): void {
    if (ifMatch === null || ifMatch.trim() === '*') return;
    const given = ifMatch.split(',').map((tag) => tag.trim().replace(/^W\//, '').replace(/^"|"$/g, ''));
    if (!given.includes(target.changeKey)) {
      throw new GraphError(
        412,
        'ErrorIrresolvableConflict',
        'The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.',
      );
    }
  }

  #touch(event: StoredEvent, series: boolean): void {
    event.changeKey = newChangeKey();
    if (series) event.seriesChangeKey = event.changeKey;
    event.modified = Math.max(this.clock(), event.modified + 1);
    event.seq = ++this.seq;
  }

  #remove(event: StoredEvent): void {
    this.events.delete(event.id);
    this.tombstones.set(event.id, { calendarId: event.calendarId, seq: ++this.seq });
    this.#emit(event, { eventId: event.id, originalStart: null }, 'deleted', null);
  }

  #emit(event: StoredEvent, key: ItemKey, changeType: Change['changeType'], changeKey: string | null): void {
    for (const listener of this.listeners)
      listener({ calendarId: event.calendarId, key, changeType, changeKey });
  }
}
