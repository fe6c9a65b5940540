import { badRequest } from './graph-error.js';
import type { PatternedRecurrence } from './recurrence.js';
import { type DateTimeTimeZone, ianaOf, TimeError, wallOf } from './times.js';

export type EmailAddress = { address: string; name?: string };
export type Attendee = {
  emailAddress: EmailAddress;
  type: string;
  status: { response: string; time: string };
};

/** The properties a client writes; an exception stores the ones it overrides. */
export type EventFields = {
  subject: string;
  body: { contentType: string; content: string };
  start: DateTimeTimeZone;
  end: DateTimeTimeZone;
  isAllDay: boolean;
  showAs: string;
  sensitivity: string;
  importance: string;
  isCancelled: boolean;
  isReminderOn: boolean;
  reminderMinutesBeforeStart: number;
  location: { displayName: string };
  attendees: Attendee[];
  categories: string[];
};

export type ExtendedProperty = { id: string; value: string };

export type EventInput = {
  fields: Partial<EventFields>;
  /** undefined: not sent; null: cleared. */
  recurrence?: PatternedRecurrence | null | 'raw';
  rawRecurrence?: unknown;
  extended?: ExtendedProperty[];
  transactionId?: string | null;
};

const SHOW_AS = ['free', 'tentative', 'busy', 'oof', 'workingElsewhere', 'unknown'];
const SENSITIVITY = ['normal', 'personal', 'private', 'confidential'];
const IMPORTANCE = ['low', 'normal', 'high'];
/** MAPI named-property ids as Graph spells them: `String {guid} Name x` or `String 0x1234`. */
const PROPERTY_ID = /^(String|Integer|Boolean|SystemTime) (\{[0-9a-f-]{36}\} Name \S.*|0x[0-9a-f]{1,4})$/i;
/** Properties the server owns; writing them is refused rather than ignored. */
const READ_ONLY = [
  'id',
  'changeKey',
  'iCalUId',
  'type',
  'seriesMasterId',
  'createdDateTime',
  'lastModifiedDateTime',
];

function str(value: unknown, field: string): string {
  if (typeof value !== 'string') throw badRequest(`Property ${field} must be a string.`);
  return value;
}

function bool(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw badRequest(`Property ${field} must be a boolean.`);
  return value;
}

function enumOf(value: unknown, allowed: string[], field: string): string {
  const found = allowed.find((a) => typeof value === 'string' && a.toLowerCase() === value.toLowerCase());
  if (!found) throw badRequest(`Requested value '${String(value)}' for ${field} was not found.`);
  return found;
}

function dateTimeTimeZone(value: unknown, field: string): DateTimeTimeZone {
  if (typeof value !== 'object' || value === null)
    throw badRequest(`Property ${field} must be a dateTimeTimeZone.`);
  const { dateTime, timeZone } = value as Record<string, unknown>;
  const result = {
    dateTime: str(dateTime, `${field}.dateTime`),
    timeZone: str(timeZone ?? 'UTC', `${field}.timeZone`),
  };
  try {
    ianaOf(result.timeZone);
    wallOf(result);
  } catch (error) {
    if (error instanceof TimeError) throw badRequest(error.message, 'TimeZoneNotSupportedException');
    throw error;
  }
  return result;
}

function attendees(value: unknown): Attendee[] {
  if (!Array.isArray(value)) throw badRequest('Property attendees must be an array.');
  return value.map((entry: unknown, i) => {
    const email = (entry as { emailAddress?: { address?: unknown; name?: unknown } } | null)?.emailAddress;
    const address = str(email?.address, `attendees[${i}].emailAddress.address`);
    const name = email?.name === undefined ? undefined : str(email.name, `attendees[${i}].emailAddress.name`);
    const type = (entry as { type?: unknown }).type;
    return {
      emailAddress: name === undefined ? { address } : { address, name },
      type: type === undefined ? 'required' : enumOf(type, ['required', 'optional', 'resource'], 'type'),
      status: { response: 'none', time: '0001-01-01T00:00:00Z' },
    };
  });
}

function extendedProperties(value: unknown): ExtendedProperty[] {
  if (!Array.isArray(value)) throw badRequest('singleValueExtendedProperties must be an array.');
  return value.map((entry: unknown) => {
    const { id, value: text } = (entry ?? {}) as Record<string, unknown>;
    if (typeof id !== 'string' || !PROPERTY_ID.test(id)) {
      throw badRequest(
        `The extended property id '${String(id)}' is not valid.`,
        'ErrorInvalidExtendedProperty',
      );
    }
    return { id, value: str(text, 'singleValueExtendedProperties.value') };
  });
}

/** Reads an event body for POST or PATCH: only the properties present, each checked. */
export function parseEventInput(body: unknown): EventInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('The body must be an event.');
  const input = body as Record<string, unknown>;
  for (const name of READ_ONLY) {
    if (name in input)
      throw badRequest(`The property '${name}' is read-only.`, 'ErrorInvalidPropertyForOperation');
  }
  const fields: Partial<EventFields> = {};
  const out: EventInput = { fields };
  for (const [name, value] of Object.entries(input)) {
    switch (name) {
      case 'subject':
        fields.subject = value === null ? '' : str(value, name);
        break;
      case 'body': {
        const { contentType, content } = (value ?? {}) as Record<string, unknown>;
        fields.body = {
          contentType: enumOf(contentType ?? 'text', ['text', 'html'], 'body.contentType'),
          content: str(content ?? '', 'body.content'),
        };
        break;
      }
      case 'start':
      case 'end':
        fields[name] = dateTimeTimeZone(value, name);
        break;
      case 'isAllDay':
      case 'isCancelled':
      case 'isReminderOn':
        fields[name] = bool(value, name);
        break;
      case 'showAs':
        fields.showAs = enumOf(value, SHOW_AS, name);
        break;
      case 'sensitivity':
        fields.sensitivity = enumOf(value, SENSITIVITY, name);
        break;
      case 'importance':
        fields.importance = enumOf(value, IMPORTANCE, name);
        break;
      case 'reminderMinutesBeforeStart':
        if (typeof value !== 'number') throw badRequest(`Property ${name} must be a number.`);
        fields.reminderMinutesBeforeStart = value;
        break;
      case 'location':
        fields.location = {
          displayName: str((value as { displayName?: unknown } | null)?.displayName ?? '', name),
        };
        break;
      case 'attendees':
        fields.attendees = attendees(value);
        break;
      case 'categories':
        if (!Array.isArray(value)) throw badRequest('Property categories must be an array.');
        fields.categories = value.map((c) => str(c, name));
        break;
      case 'recurrence':
        out.recurrence = value === null ? null : 'raw';
        out.rawRecurrence = value;
        break;
      case 'singleValueExtendedProperties':
        out.extended = extendedProperties(value);
        break;
      case 'transactionId':
        out.transactionId = value === null ? null : str(value, name);
        break;
      default:
        // Graph ignores OData annotations and properties this emulator does not model.
        break;
    }
  }
  return out;
}
