/**
 * The one iCalendar writer (RFC 5545): a small typed model of components, properties, parameters and
 * values, written with CRLF line ends, TEXT escaping (§3.3.11) and folding at 75 octets (§3.1).
 * Everything Sched renders (bookings, export feeds, Google and Graph events) is built through it.
 */

const MAX_LINE_OCTETS = 75;
const WALL_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/;
const LOCAL_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const NAME = /^[A-Za-z0-9-]+$/;

/** A DATE or DATE-TIME in one of its three forms (§3.3.4, §3.3.5). */
export type DateValue =
  /** A DATE, `YYYY-MM-DD`. */
  | { form: 'date'; date: string }
  /** An exact instant, written in UTC with `Z`. */
  | { form: 'utc'; epochMs: number }
  /** A wall time, `YYYY-MM-DDTHH:MM:SS`, with no zone: read in the reader's own zone. */
  | { form: 'floating'; wall: string }
  /** A wall time in the zone named by TZID. */
  | { form: 'zoned'; zone: string; wall: string };

/** One value of a property: TEXT (escaped), a DATE / DATE-TIME, or text already in its value syntax. */
export type Value = { text: string } | { date: DateValue } | { raw: string };

/** Parameter values; several are written comma-separated (§3.2). */
export type Params = Readonly<Record<string, string | readonly string[]>>;

export type Property = { name: string; params?: Params; values: readonly Value[] };

export type Component = { name: string; properties: readonly Property[]; components?: readonly Component[] };

export class IcalWriteError extends Error {}

/** RFC 5545 §3.3.11 TEXT escaping; a bare CR would otherwise end the content line early. */
export function escapeText(value: string): string {
  return value
    .replace(/\\/g, '\\\\')
    .replace(/;/g, '\\;')
    .replace(/,/g, '\\,')
    .replace(/\r\n|\r|\n/g, '\\n');
}

/**
 * Parameter values cannot be escaped in RFC 5545 (RFC 6868 caret escaping is not universally read),
 * so characters that would end the value are dropped, and the value is quoted when it contains
 * a separator.
 */
function paramValue(value: string): string {
  const cleaned = value.replace(/["\r\n\p{Cc}]/gu, '');
  return /[;:,]/.test(cleaned) ? `"${cleaned}"` : cleaned;
}

/**
 * Folds one content line at 75 octets (RFC 5545 §3.1). Splitting inside a UTF-8 sequence is allowed by
 * the RFC, but many readers decode each physical line on its own, so breaks fall between code points.
 */
export function foldLine(line: string): string {
  if (Buffer.byteLength(line, 'utf8') <= MAX_LINE_OCTETS) return line;
  const out: string[] = [];
  let current = '';
  let octets = 0;
  // The first physical line holds 75 octets; continuation lines spend one on the leading space.
  let limit = MAX_LINE_OCTETS;
  for (const char of line) {
    const size = Buffer.byteLength(char, 'utf8');
    if (octets + size > limit) {
      out.push(current);
      current = '';
      octets = 0;
      limit = MAX_LINE_OCTETS - 1;
    }
    current += char;
    octets += size;
  }
  out.push(current);
  return out.join('\r\n ');
}

/** UTC DATE-TIME form, e.g. 20260105T080000Z; sub-second precision has no place in iCalendar. */
export function formatUtc(epochMs: number): string {
  if (!Number.isFinite(epochMs)) throw new IcalWriteError(`not an instant: ${epochMs}`);
  return new Date(epochMs)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

export const utc = (epochMs: number): DateValue => ({ form: 'utc', epochMs });
export const date = (isoDate: string): DateValue => ({ form: 'date', date: isoDate });
export const floating = (wall: string): DateValue => ({ form: 'floating', wall });
export const zoned = (zone: string, wall: string): DateValue => ({ form: 'zoned', zone, wall });

function formatDate(value: DateValue): string {
  switch (value.form) {
    case 'utc':
      return formatUtc(value.epochMs);
    case 'date': {
      const m = LOCAL_DATE.exec(value.date);
      if (!m) throw new IcalWriteError(`not a date: ${value.date}`);
      return `${m[1]}${m[2]}${m[3]}`;
    }
    default: {
      const m = WALL_TIME.exec(value.wall);
      if (!m) throw new IcalWriteError(`not a wall time: ${value.wall}`);
      return `${m[1]}${m[2]}${m[3]}T${m[4]}${m[5]}${m[6]}`;
    }
  }
}

/** VALUE=DATE or TZID, which every value of one property must share. */
function dateParams(values: readonly DateValue[]): Record<string, string> {
  const first = values[0];
  if (!first) return {};
  const key = (v: DateValue) => (v.form === 'zoned' ? `zoned ${v.zone}` : v.form);
  if (values.some((v) => key(v) !== key(first))) {
    throw new IcalWriteError('the values of one date property must share their form and zone');
  }
  if (first.form === 'date') return { VALUE: 'DATE' };
  if (first.form === 'zoned') return { TZID: first.zone };
  return {};
}

function writeValue(value: Value): string {
  if ('text' in value) return escapeText(value.text);
  if ('date' in value) return formatDate(value.date);
  // A raw value with CR/LF would inject properties; no value syntax other than TEXT holds them.
  return value.raw.replace(/[\r\n]/g, '');
}

/** One unfolded content line: NAME;PARAM=value:value,value. */
export function contentLine(property: Property): string {
  if (!NAME.test(property.name)) throw new IcalWriteError(`not a property name: ${property.name}`);
  const dates = property.values.flatMap((v) => ('date' in v ? [v.date] : []));
  if (dates.length > 0 && dates.length !== property.values.length) {
    throw new IcalWriteError(`${property.name}: date values cannot be mixed with others`);
  }
  const params: Record<string, string | readonly string[]> = { ...dateParams(dates), ...property.params };
  let line = property.name.toUpperCase();
  for (const [name, value] of Object.entries(params)) {
    if (!NAME.test(name)) throw new IcalWriteError(`not a parameter name: ${name}`);
    const list = typeof value === 'string' ? [value] : value;
    line += `;${name.toUpperCase()}=${list.map(paramValue).join(',')}`;
  }
  return `${line}:${property.values.map(writeValue).join(',')}`;
}

function componentLines(component: Component): string[] {
  const name = component.name.toUpperCase();
  if (!NAME.test(name)) throw new IcalWriteError(`not a component name: ${component.name}`);
  return [
    `BEGIN:${name}`,
    ...component.properties.map(contentLine),
    ...(component.components ?? []).flatMap(componentLines),
    `END:${name}`,
  ];
}

/** The component as iCalendar text: CRLF after every line, each folded at 75 octets. */
export function writeComponent(component: Component): string {
  return `${componentLines(component).map(foldLine).join('\r\n')}\r\n`;
}

// Property builders, for the common value types.

export function text(name: string, value: string, params?: Params): Property {
  return { name, values: [{ text: value }], ...(params ? { params } : {}) };
}

/** A property whose value is already in its own syntax (RECUR, CAL-ADDRESS, a keyword). */
export function raw(name: string, value: string, params?: Params): Property {
  return { name, values: [{ raw: value }], ...(params ? { params } : {}) };
}

export function integer(name: string, value: number): Property {
  return raw(name, String(Math.trunc(value)));
}

/** A DATE / DATE-TIME property; several values (EXDATE, RDATE) share one form, written once. */
export function dates(name: string, ...values: DateValue[]): Property {
  return { name, values: values.map((value) => ({ date: value })) };
}

/** An address such as ATTENDEE; parameters such as CN are cleaned and quoted as needed. */
export function mailto(name: string, email: string, params?: Params): Property {
  return raw(name, `mailto:${email}`, params);
}

/**
 * A property given as one content line by someone else (Google's `recurrence` entries): its name,
 * parameters and value, or null when the line has no value. Quoted parameter values are unquoted.
 */
export function parseContentLine(line: string): Property | null {
  const params: Record<string, string[]> = {};
  let name = '';
  let current: string[] | null = null;
  let value = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const char = line[i]!;
    if (quoted) {
      if (char === '"') quoted = false;
      else value += char;
      continue;
    }
    if (char === '"' && current !== null) quoted = true;
    else if (char === ';' || char === ':') {
      if (current !== null) current.push(value);
      else if (name === '') name = value;
      else return null;
      if (!NAME.test(name)) return null;
      if (char === ':') {
        const property: Property = { name: name.toUpperCase(), values: [{ raw: line.slice(i + 1) }] };
        return Object.keys(params).length > 0 ? { ...property, params } : property;
      }
      current = null;
      value = '';
    } else if (char === '=' && current === null && name !== '') {
      if (!NAME.test(value)) return null;
      current = params[value.toUpperCase()] = [];
      value = '';
    } else if (char === ',' && current !== null) {
      current.push(value);
      value = '';
    } else value += char;
  }
  return null;
}

/** A VCALENDAR of version 2.0 with its PRODID, CALSCALE when asked for, and the given components. */
export function vcalendar(
  prodId: string,
  components: readonly Component[],
  options: { gregorian?: boolean; properties?: readonly Property[] } = {},
): Component {
  return {
    name: 'VCALENDAR',
    properties: [
      raw('VERSION', '2.0'),
      text('PRODID', prodId),
      ...(options.gregorian === false ? [] : [raw('CALSCALE', 'GREGORIAN')]),
      ...(options.properties ?? []),
    ],
    components,
  };
}
