import ICAL from 'ical.js';
import type { GraphControl } from './control.js';
import { parseEventInput } from './event-input.js';
import { decodeId } from './ids.js';
import { type DateTimeTimeZone, toInstant } from './times.js';

/**
 * "A user creates this event in Outlook": turns a VCALENDAR (one UID, maybe a simple RRULE with
 * EXDATEs and RECURRENCE-ID overrides) into what Outlook would hold: an event or series master, its
 * cancelled occurrences and its exceptions. Covers what the provider contract writes, not all of RFC 5545.
 */
const WEEKDAYS: Record<string, string> = {
  MO: 'monday',
  TU: 'tuesday',
  WE: 'wednesday',
  TH: 'thursday',
  FR: 'friday',
  SA: 'saturday',
  SU: 'sunday',
};

const SUNDAY_FIRST = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

function pad(value: number, size = 2): string {
  return String(value).padStart(size, '0');
}

function timing(property: ICAL.Property | null): { value: DateTimeTimeZone; isDate: boolean } | null {
  if (!property) return null;
  const time = property.getFirstValue() as ICAL.Time;
  const tzid = property.getParameter('tzid');
  const date = `${pad(time.year, 4)}-${pad(time.month)}-${pad(time.day)}`;
  const clock = time.isDate ? '00:00:00' : `${pad(time.hour)}:${pad(time.minute)}:${pad(time.second)}`;
  const zone = typeof tzid === 'string' ? tzid : 'UTC';
  return { value: { dateTime: `${date}T${clock}`, timeZone: zone }, isDate: time.isDate };
}

function recurrenceOf(rule: ICAL.Recur, start: DateTimeTimeZone): Record<string, unknown> {
  const startDate = start.dateTime.slice(0, 10);
  const byDay = rule.parts.BYDAY ?? [];
  const weekday = new Date(`${startDate}T00:00:00Z`).getUTCDay();
  const startDay = SUNDAY_FIRST[weekday]!;
  const interval = rule.interval || 1;
  const pattern: Record<string, unknown> = { interval };
  switch (rule.freq) {
    case 'DAILY':
      pattern.type = 'daily';
      break;
    case 'WEEKLY':
      pattern.type = 'weekly';
      pattern.daysOfWeek = byDay.length > 0 ? byDay.map((d) => WEEKDAYS[d.slice(-2)]) : [startDay];
      // ical.js numbers week days from Sunday = 1.
      pattern.firstDayOfWeek = SUNDAY_FIRST[(rule.wkst || 2) - 1] ?? 'monday';
      break;
    case 'MONTHLY':
      pattern.type = 'absoluteMonthly';
      pattern.dayOfMonth = rule.parts.BYMONTHDAY?.[0] ?? Number(startDate.slice(8));
      break;
    case 'YEARLY':
      pattern.type = 'absoluteYearly';
      pattern.dayOfMonth = Number(startDate.slice(8));
      pattern.month = Number(startDate.slice(5, 7));
      break;
    default:
      throw new Error(`RRULE FREQ=${rule.freq} is not something Outlook can hold`);
  }
  let range: Record<string, unknown> = { type: 'noEnd', startDate };
  if (rule.count) range = { type: 'numbered', startDate, numberOfOccurrences: rule.count };
  else if (rule.until) {
    const u = rule.until;
    range = { type: 'endDate', startDate, endDate: `${pad(u.year, 4)}-${pad(u.month)}-${pad(u.day)}` };
  }
  return { pattern, range };
}

function fields(component: ICAL.Component): Record<string, unknown> {
  const start = timing(component.getFirstProperty('dtstart'));
  const end = timing(component.getFirstProperty('dtend'));
  if (!start) throw new Error('a VEVENT without DTSTART');
  const out: Record<string, unknown> = {
    subject: String(component.getFirstPropertyValue('summary') ?? ''),
    start: start.value,
    end: end?.value ?? start.value,
    isAllDay: start.isDate,
  };
  const description = component.getFirstPropertyValue('description');
  if (typeof description === 'string') out.body = { contentType: 'text', content: description };
  const transparency = component.getFirstPropertyValue('transp');
  if (transparency === 'TRANSPARENT') out.showAs = 'free';
  return out;
}

/** Stores the VCALENDAR in `calendarId` through the control surface; returns the event's immutable id. */
export function putIcs(control: GraphControl, calendarId: string, ics: string): string {
  const root = new ICAL.Component(ICAL.parse(ics) as unknown[]);
  const events = root.getAllSubcomponents('vevent');
  const master = events.find((e) => !e.hasProperty('recurrence-id'));
  if (!master) throw new Error('only overrides, no master');
  const uid = String(master.getFirstPropertyValue('uid'));
  const body = fields(master);
  const rule = master.getFirstPropertyValue('rrule') as ICAL.Recur | null;
  if (rule) body.recurrence = recurrenceOf(rule, body.start as DateTimeTimeZone);
  const { immutableId } = control.putEvent(calendarId, body, { iCalUId: uid });
  const { eventId } = decodeId(immutableId);
  const mailbox = control.state.mailbox;
  for (const property of master.getAllProperties('exdate')) {
    const exdate = timing(property);
    if (exdate) mailbox.deleteEvent({ eventId, originalStart: toInstant(exdate.value) }, null);
  }
  for (const override of events.filter((e) => e.hasProperty('recurrence-id'))) {
    const rid = timing(override.getFirstProperty('recurrence-id'));
    if (!rid) continue;
    const { isAllDay: _, ...changes } = fields(override);
    mailbox.updateEvent({ eventId, originalStart: toInstant(rid.value) }, parseEventInput(changes), null);
  }
  return immutableId;
}
