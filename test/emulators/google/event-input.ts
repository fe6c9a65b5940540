import { errors, GoogleApiError } from './errors.js';
import { formatInZone, isDate, isZone, parseLocalInZone, parseRfc3339 } from './time.js';
import type { Attendee, EventDateTime, ExtendedProperties, GoogleEvent } from './types.js';

/** Base32hex as Google defines client-chosen event ids: a–v and 0–9, 5 to 1024 characters. */
export const EVENT_ID = /^[a-v0-9]{5,1024}$/;

const STATUSES = new Set(['confirmed', 'tentative', 'cancelled']);

type Field = 'start' | 'end' | 'originalStartTime';

function invalid(message: string, location?: string): GoogleApiError {
  return errors.badRequest(message, location);
}

/**
 * A dateTime without an offset is read in the given zone (Google allows that when timeZone is set);
 * dateTimes are stored written in their zone, or in the calendar's when the event names none.
 */
export function normaliseDateTime(
  value: unknown,
  field: Field,
  calendarZone: string,
  recurring: boolean,
): EventDateTime {
  if (typeof value !== 'object' || value === null) {
    throw new GoogleApiError(400, {
      domain: 'global',
      reason: 'required',
      message: `Missing ${field === 'start' ? 'start' : 'end'} time.`,
    });
  }
  const input = value as Record<string, unknown>;
  const zone = input.timeZone;
  if (zone !== undefined && (typeof zone !== 'string' || !isZone(zone))) {
    throw invalid(`Invalid time zone definition for ${field} time.`);
  }
  if (typeof input.date === 'string' && input.dateTime === undefined) {
    if (!isDate(input.date)) throw invalid(`Invalid ${field} time.`);
    return { date: input.date };
  }
  if (typeof input.dateTime !== 'string' || input.date !== undefined) {
    throw invalid(`Invalid ${field} time.`);
  }
  let ms = parseRfc3339(input.dateTime);
  if (ms === null && typeof zone === 'string') ms = parseLocalInZone(input.dateTime, zone);
  if (ms === null) throw invalid(`Invalid ${field} time.`);
  if (recurring && field !== 'originalStartTime' && typeof zone !== 'string') {
    throw invalid(`Missing time zone definition for ${field} time.`);
  }
  if (typeof zone === 'string') return { dateTime: formatInZone(ms, zone), timeZone: zone };
  return { dateTime: formatInZone(ms, calendarZone) };
}

function strings(value: unknown, location: string): Record<string, string> | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object') throw invalid('Invalid value', location);
  const out: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
    if (entry === null) continue;
    if (typeof entry !== 'string') throw invalid('Invalid value', `${location}.${key}`);
    out[key] = entry;
  }
  return out;
}

export function extendedProperties(value: unknown): ExtendedProperties | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object') throw invalid('Invalid value', 'extendedProperties');
  const input = value as Record<string, unknown>;
  const priv = strings(input.private, 'extendedProperties.private');
  const shared = strings(input.shared, 'extendedProperties.shared');
  return { ...(priv ? { private: priv } : {}), ...(shared ? { shared } : {}) };
}

/** PATCH semantics for extended properties: keys merge, a null value deletes its key. */
export function mergeExtendedProperties(
  current: ExtendedProperties | undefined,
  patch: unknown,
): ExtendedProperties | undefined {
  if (patch === undefined) return current;
  if (patch === null) return undefined;
  if (typeof patch !== 'object') throw invalid('Invalid value', 'extendedProperties');
  const out: ExtendedProperties = { ...current };
  for (const scope of ['private', 'shared'] as const) {
    const changes = (patch as Record<string, unknown>)[scope];
    if (changes === undefined) continue;
    if (changes === null) {
      delete out[scope];
      continue;
    }
    const merged: Record<string, string> = { ...(out[scope] ?? {}) };
    for (const [key, entry] of Object.entries(changes as Record<string, unknown>)) {
      if (entry === null) delete merged[key];
      else if (typeof entry === 'string') merged[key] = entry;
      else throw invalid('Invalid value', `extendedProperties.${scope}.${key}`);
    }
    out[scope] = merged;
  }
  return out;
}

function attendees(value: unknown): Attendee[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw invalid('Invalid attendee list', 'attendees');
  return value.map((entry: unknown, i) => {
    const input = (entry ?? {}) as Record<string, unknown>;
    if (typeof input.email !== 'string' || !input.email.includes('@')) {
      throw invalid('Invalid attendee email.', `attendees[${i}].email`);
    }
    return {
      email: input.email,
      ...(typeof input.displayName === 'string' ? { displayName: input.displayName } : {}),
      responseStatus: typeof input.responseStatus === 'string' ? input.responseStatus : 'needsAction',
      ...(input.optional === true ? { optional: true } : {}),
    };
  });
}

function recurrence(value: unknown): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) throw invalid('Invalid recurrence rule.', 'recurrence');
  return value.map((line: unknown) => {
    if (typeof line !== 'string' || !/^(RRULE|EXRULE|RDATE|EXDATE)[;:]/i.test(line)) {
      throw invalid('Invalid recurrence rule.', 'recurrence');
    }
    return line;
  });
}

/** The writable fields of an event body, validated; what a PUT replaces and a PATCH merges. */
export type EventFields = Partial<
  Pick<
    GoogleEvent,
    | 'summary'
    | 'description'
    | 'location'
    | 'start'
    | 'end'
    | 'recurrence'
    | 'transparency'
    | 'visibility'
    | 'attendees'
    | 'extendedProperties'
    | 'reminders'
    | 'colorId'
    | 'status'
    | 'sequence'
  >
>;

/** Reads the fields present in `input`; `base` supplies start/end for a PATCH that leaves them out. */
export function readFields(
  input: Record<string, unknown>,
  calendarZone: string,
  base: EventFields | null,
): EventFields {
  const out: EventFields = {};
  const recurringInput = recurrence(input.recurrence);
  const recurring =
    (recurringInput ?? (input.recurrence === undefined ? base?.recurrence : undefined) ?? []).length > 0;
  for (const key of ['summary', 'description', 'location', 'colorId', 'visibility'] as const) {
    const value = input[key];
    if (value === null) out[key] = undefined;
    else if (typeof value === 'string') out[key] = value;
  }
  if (input.start !== undefined || base === null) {
    out.start = normaliseDateTime(input.start, 'start', calendarZone, recurring);
  }
  if (input.end !== undefined || base === null) {
    out.end = normaliseDateTime(input.end, 'end', calendarZone, recurring);
  }
  if (input.recurrence !== undefined) out.recurrence = recurringInput;
  if (input.transparency !== undefined) {
    if (input.transparency !== 'opaque' && input.transparency !== 'transparent') {
      throw invalid('Invalid transparency value.', 'transparency');
    }
    out.transparency = input.transparency;
  }
  if (input.attendees !== undefined) out.attendees = attendees(input.attendees);
  if (input.extendedProperties !== undefined) {
    out.extendedProperties = extendedProperties(input.extendedProperties);
  }
  if (typeof input.reminders === 'object' && input.reminders !== null) {
    out.reminders = input.reminders as GoogleEvent['reminders'];
  }
  if (input.status !== undefined) {
    if (typeof input.status !== 'string' || !STATUSES.has(input.status)) {
      throw invalid('Invalid status.', 'status');
    }
    out.status = input.status as GoogleEvent['status'];
  }
  if (input.sequence !== undefined) {
    if (!Number.isInteger(input.sequence) || (input.sequence as number) < 0) {
      throw invalid('Invalid sequence.');
    }
    out.sequence = input.sequence as number;
  }
  return out;
}
