import type ICAL from 'ical.js';
import type { OccurrenceStatus, Transparency } from './expand-object.js';
import type { Zone } from './time-zones.js';
import { ianaZone, offsetZone, resolveTzid, vtimezoneFromComponent, ZoneClock } from './time-zones.js';
import type { DateValue, DurationValue } from './values.js';
import { IcalValueError, parseDateValue, parseDuration, rawValues, textOf, tzidOf } from './values.js';

/** A DATE or DATE-TIME with the zone its wall time is read in (the floating zone for DATEs). */
export type Timing = DateValue & { zone: Zone };

export type EventData = {
  component: ICAL.Component;
  uid: string | null;
  sequence: number;
  /** DTSTAMP as written; only used to pick the newest of duplicate components. */
  stamp: number;
  start: Timing | null;
  end: Timing | null;
  duration: DurationValue | null;
  recurrenceId: Timing | null;
  title: string | null;
  status: OccurrenceStatus | null;
  transparency: Transparency | null;
};

const UTC: Zone = { kind: 'iana', id: 'UTC' };

/**
 * Reads the VEVENTs of one object, resolving every TZID once. Zone names ical.js does not know never
 * reach ical.js's own conversion (see time-zones.ts).
 */
export class ObjectReader {
  readonly warnings: string[] = [];
  readonly clock: ZoneClock;
  readonly floating: Zone;
  /** Where floating DATE-TIMEs are read: X-WR-TIMEZONE when the calendar names one. */
  readonly timedFloating: Zone;
  private readonly zones = new Map<string, Zone>();
  private readonly vtimezones = new Map<string, ICAL.Component>();

  constructor(calendars: ICAL.Component[], floatingZone: string, range: { start: number; end: number }) {
    const floating = ianaZone(floatingZone);
    if (floating === null) throw new IcalValueError(`floatingZone "${floatingZone}" is not a time zone`);
    this.floating = { kind: 'iana', id: floating };
    this.clock = new ZoneClock(range);
    for (const calendar of calendars) {
      for (const vtimezone of calendar.getAllSubcomponents('vtimezone')) {
        const tzid = textOf(vtimezone, 'tzid');
        if (tzid !== null && !this.vtimezones.has(tzid)) this.vtimezones.set(tzid, vtimezone);
      }
    }
    this.timedFloating = this.floating;
    const wrZone = calendars.map((c) => textOf(c, 'x-wr-timezone')).find((z) => z !== null);
    if (wrZone !== undefined && wrZone !== null) {
      const zone = this.zoneFor(wrZone);
      if (zone !== this.floating) this.timedFloating = zone;
    }
  }

  zoneFor(tzid: string): Zone {
    const known = this.zones.get(tzid);
    if (known !== undefined) return known;
    let zone: Zone | null = null;
    const iana = resolveTzid(tzid);
    if (iana !== null) zone = { kind: 'iana', id: iana };
    const component = this.vtimezones.get(tzid);
    if (zone === null && component !== undefined) {
      const tz = vtimezoneFromComponent(component);
      if (tz !== null) zone = { kind: 'vtimezone', tzid, tz };
    }
    const offset = zone === null ? offsetZone(tzid) : null;
    if (offset !== null) zone = { kind: 'iana', id: offset };
    if (zone === null) {
      this.warnings.push(`unknown TZID "${tzid}": read as floating time`);
      zone = this.floating;
    }
    this.zones.set(tzid, zone);
    return zone;
  }

  timingOf(value: string, property: ICAL.Property, name: string): Timing {
    const parsed = parseDateValue(value, name);
    if (parsed.isDate) return { ...parsed, zone: this.floating };
    if (parsed.utc) return { ...parsed, zone: UTC };
    const tzid = tzidOf(property);
    return { ...parsed, zone: tzid === null ? this.timedFloating : this.zoneFor(tzid) };
  }

  /** A malformed EXDATE or RDATE value drops only that value, with a warning. */
  tryTimingOf(value: string, property: ICAL.Property, name: string): Timing | null {
    try {
      return this.timingOf(value, property, name);
    } catch (error) {
      this.warnings.push(error instanceof Error ? error.message : String(error));
      return null;
    }
  }

  timing(component: ICAL.Component, name: string): Timing | null {
    const property = component.getFirstProperty(name);
    if (property === null) return null;
    const value = rawValues(property)[0];
    if (typeof value !== 'string') throw new IcalValueError(`${name.toUpperCase()}: missing value`);
    return this.timingOf(value, property, name.toUpperCase());
  }

  instant(timing: Timing): number {
    return this.clock.toInstant(timing.wall, timing.zone);
  }

  readEvent(component: ICAL.Component): EventData {
    const durationText = textOf(component, 'duration');
    const stamp = this.optionalTiming(component, 'dtstamp');
    const sequence = Number(component.getFirstPropertyValue('sequence'));
    return {
      component,
      uid: textOf(component, 'uid'),
      sequence: Number.isFinite(sequence) ? sequence : 0,
      stamp: stamp === null ? 0 : stamp.wall,
      start: this.timing(component, 'dtstart'),
      end: this.timing(component, 'dtend'),
      duration: durationText === null ? null : parseDuration(durationText),
      recurrenceId: this.timing(component, 'recurrence-id'),
      title: textOf(component, 'summary'),
      status: statusOf(textOf(component, 'status')),
      transparency: transparencyOf(textOf(component, 'transp')),
    };
  }

  /** For properties nothing depends on: a malformed value is reported and ignored. */
  optionalTiming(component: ICAL.Component, name: string): Timing | null {
    try {
      return this.timing(component, name);
    } catch (error) {
      this.warnings.push(error instanceof Error ? error.message : String(error));
      return null;
    }
  }

  /** LAST-MODIFIED, else DTSTAMP, as an instant. */
  lastModified(component: ICAL.Component): number | null {
    const timing =
      this.optionalTiming(component, 'last-modified') ?? this.optionalTiming(component, 'dtstamp');
    return timing === null ? null : this.instant(timing);
  }
}

function statusOf(text: string | null): OccurrenceStatus | null {
  switch (text?.trim().toUpperCase()) {
    case undefined:
      return null;
    case 'CANCELLED':
      return 'cancelled';
    case 'TENTATIVE':
      return 'tentative';
    default:
      return 'confirmed';
  }
}

function transparencyOf(text: string | null): Transparency | null {
  if (text === null) return null;
  return text.trim().toUpperCase() === 'TRANSPARENT' ? 'transparent' : 'opaque';
}

/** Of several components for the same instance, the one with the highest SEQUENCE, then DTSTAMP, wins. */
export function newer(a: EventData, b: EventData): EventData {
  if (a.sequence !== b.sequence) return a.sequence > b.sequence ? a : b;
  return b.stamp >= a.stamp ? b : a;
}
