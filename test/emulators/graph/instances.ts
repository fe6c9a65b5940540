import { Temporal } from 'temporal-polyfill';
import type { EventFields } from './event-input.js';
import type { Instance, StoredEvent } from './mailbox.js';
import { occurrenceDates } from './recurrence.js';
import { ianaOf, instantOfWall, toInstant, wallOf } from './times.js';

/** Whether [start, end) meets [from, to); an instant event counts when it lies inside. */
export function overlaps(start: number, end: number, from: number, to: number): boolean {
  return start < to && (end > from || (start === end && start >= from));
}

/** A single event or a series master as one item. */
export function wholeInstance(event: StoredEvent): Instance {
  const days = event.isAllDay
    ? { start: wallOf(event.start).toPlainDate(), end: wallOf(event.end).toPlainDate() }
    : null;
  return {
    key: { eventId: event.id, originalStart: null },
    event,
    type: event.recurrence ? 'seriesMaster' : 'singleInstance',
    fields: event,
    start: toInstant(event.start),
    end: toInstant(event.end),
    days,
    changeKey: event.changeKey,
    modified: event.modified,
  };
}

export function occurrenceAt(event: StoredEvent, originalStart: number): Instance | null {
  const until = Temporal.Instant.fromEpochMilliseconds(originalStart)
    .toZonedDateTimeISO('UTC')
    .toPlainDate()
    .add({ days: 2 });
  return (
    occurrencesOf(event, originalStart + 1, until).find((i) => i.key.originalStart === originalStart) ?? null
  );
}

/** Every occurrence starting before `to` (exceptions at their moved times), cancelled ones left out. */
export function occurrencesOf(event: StoredEvent, to: number, untilDate?: Temporal.PlainDate): Instance[] {
  const recurrence = event.recurrence!;
  const zone = event.isAllDay
    ? event.start.timeZone
    : (recurrence.range.recurrenceTimeZone ?? event.start.timeZone);
  const first = event.isAllDay
    ? wallOf(event.start)
    : Temporal.Instant.fromEpochMilliseconds(toInstant(event.start))
        .toZonedDateTimeISO(ianaOf(zone))
        .toPlainDateTime();
  const length = toInstant(event.end) - toInstant(event.start);
  const spanDays = event.isAllDay
    ? wallOf(event.start).toPlainDate().until(wallOf(event.end).toPlainDate()).days
    : 0;
  const until =
    untilDate ??
    Temporal.Instant.fromEpochMilliseconds(to).toZonedDateTimeISO('UTC').toPlainDate().add({ days: 2 });
  const out: Instance[] = [];
  for (const date of occurrenceDates(recurrence, until)) {
    const originalStart = instantOfWall(date.toPlainDateTime(first.toPlainTime()), zone);
    if (event.cancelled.has(originalStart)) continue;
    const exception = event.exceptions.get(originalStart);
    const fields: EventFields = exception ? { ...event, ...exception.fields } : event;
    let start = originalStart;
    let end = originalStart + length;
    let days: Instance['days'] = event.isAllDay ? { start: date, end: date.add({ days: spanDays }) } : null;
    if (exception?.fields.start || exception?.fields.end) {
      start = toInstant(fields.start);
      end = toInstant(fields.end);
      days = fields.isAllDay
        ? { start: wallOf(fields.start).toPlainDate(), end: wallOf(fields.end).toPlainDate() }
        : null;
    } else if (days) {
      end = instantOfWall(days.end.toPlainDateTime({ hour: 0 }), zone);
    }
    out.push({
      key: { eventId: event.id, originalStart },
      event,
      type: exception ? 'exception' : 'occurrence',
      fields,
      start,
      end,
      days,
      changeKey: exception?.changeKey ?? event.seriesChangeKey,
      modified: exception?.modified ?? event.modified,
    });
  }
  return out.filter((i) => i.start < to || i.type === 'exception');
}
