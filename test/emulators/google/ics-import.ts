import ICAL from 'ical.js';
import { errors } from './errors.js';
import type { EventStore } from './store.js';
import { compactDate, compactUtc, parseLocalInZone, parseRfc3339 } from './time.js';
import type { Calendar, EventDateTime, GoogleEvent } from './types.js';

const RECURRENCE_PROPS = ['rrule', 'exrule', 'rdate', 'exdate'];

function dateTimeOf(property: ICAL.Property, calendarZone: string, recurring: boolean): EventDateTime {
  const value = property.getFirstValue() as ICAL.Time;
  const text = value.toString();
  if (value.isDate) return { date: text };
  if (text.endsWith('Z')) return recurring ? { dateTime: text, timeZone: 'UTC' } : { dateTime: text };
  const tzid = property.getParameter('tzid');
  return { dateTime: text, timeZone: typeof tzid === 'string' ? tzid : calendarZone };
}

function endOf(component: ICAL.Component, calendarZone: string, recurring: boolean): EventDateTime {
  const dtend = component.getFirstProperty('dtend');
  if (dtend) return dateTimeOf(dtend, calendarZone, recurring);
  const dtstart = component.getFirstProperty('dtstart')!;
  const start = (dtstart.getFirstValue() as ICAL.Time).clone();
  const duration = component.getFirstPropertyValue('duration');
  if (duration instanceof ICAL.Duration) start.addDuration(duration);
  else if (start.isDate) start.day += 1;
  const end = new ICAL.Property('dtend');
  const tzid = dtstart.getParameter('tzid');
  if (typeof tzid === 'string') end.setParameter('tzid', tzid);
  end.setValue(start);
  return dateTimeOf(end, calendarZone, recurring);
}

function text(component: ICAL.Component, name: string): string | undefined {
  const value = component.getFirstPropertyValue(name);
  return typeof value === 'string' ? value : undefined;
}

function fieldsOf(component: ICAL.Component, calendarZone: string): Record<string, unknown> {
  const recurrence = RECURRENCE_PROPS.flatMap((name) =>
    component.getAllProperties(name).map((p) => p.toICALString()),
  );
  const recurring = recurrence.length > 0;
  const dtstart = component.getFirstProperty('dtstart');
  if (!dtstart) throw errors.required('start');
  const status = text(component, 'status')?.toLowerCase();
  const transp = text(component, 'transp');
  return {
    summary: text(component, 'summary'),
    description: text(component, 'description'),
    location: text(component, 'location'),
    start: dateTimeOf(dtstart, calendarZone, recurring),
    end: endOf(component, calendarZone, recurring),
    ...(recurring ? { recurrence } : {}),
    ...(status === 'tentative' || status === 'confirmed' ? { status } : {}),
    ...(transp === 'TRANSPARENT' ? { transparency: 'transparent' } : {}),
  };
}

/**
 * What a user importing an .ics file into Google Calendar ends up with: the master as an event with the
 * file's UID as iCalUID, each RECURRENCE-ID override as an exception of its instance, and cancelled
 * overrides as cancelled instances.
 */
export function importIcs(store: EventStore, calendar: Calendar, ics: string): GoogleEvent[] {
  const root = new ICAL.Component(ICAL.parse(ics) as unknown[]);
  const events = root.getAllSubcomponents('vevent');
  const masters = events.filter((e) => !e.hasProperty('recurrence-id'));
  const created: GoogleEvent[] = [];
  for (const master of masters) {
    const uid = text(master, 'uid');
    created.push(
      store.insert(calendar, { ...fieldsOf(master, calendar.timeZone), ...(uid ? { iCalUID: uid } : {}) }),
    );
  }
  for (const override of events.filter((e) => e.hasProperty('recurrence-id'))) {
    const uid = text(override, 'uid');
    const master = created.find((e) => e.iCalUID === uid);
    if (!master) throw errors.badRequest(`override of unknown UID ${String(uid)}`);
    const rid = override.getFirstProperty('recurrence-id')!;
    const original = dateTimeOf(rid, master.start?.timeZone ?? calendar.timeZone, true);
    const instanceId = `${master.id}_${keyOf(original)}`;
    if (text(override, 'status') === 'CANCELLED') {
      store.remove(calendar, instanceId);
      continue;
    }
    created.push(store.write(calendar, instanceId, fieldsOf(override, calendar.timeZone), false));
  }
  return created;
}

/** The instance-id suffix a RECURRENCE-ID stands for. */
function keyOf(original: EventDateTime): string {
  if (original.date !== undefined) return compactDate(original.date);
  const text = original.dateTime ?? '';
  const ms = text.endsWith('Z') ? parseRfc3339(text) : parseLocalInZone(text, original.timeZone ?? 'UTC');
  if (ms === null) throw errors.badRequest(`invalid RECURRENCE-ID ${text}`);
  return compactUtc(ms);
}
