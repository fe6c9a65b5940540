import ICAL from 'ical.js';

/** Input larger than this is refused before parsing. */
export const ICS_MAX_BYTES = 10 * 1024 * 1024;

export class IcalParseError extends Error {}

/** Refuses oversize input without encoding it first when the length alone decides. */
export function checkSize(text: string, maxBytes: number): void {
  // A UTF-16 code unit takes at most 3 UTF-8 octets, and at least one.
  if (text.length * 3 <= maxBytes) return;
  const bytes = text.length > maxBytes ? text.length : Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    throw new IcalParseError(`input is larger than the limit of ${maxBytes} bytes`);
  }
}

/**
 * ical.js fails on a UTF-8 BOM and on lines ended by a bare CR (old Mac producers); it copes with
 * LF and blank lines itself, which are left alone so line numbers in errors match the input.
 */
export function normaliseText(text: string): string {
  return (
    text
      .replace(/^\uFEFF/, '')
      .replace(/\r(?!\n)/g, '\r\n')
      // NUL is no character of any calendar, and PostgreSQL stores no text holding it.
      .replace(/\0/g, '')
      .replace(RULE_LINE, (_line, name: string, value: string) => `${name}:${lenientRule(value)}`)
  );
}

/** An RRULE or EXRULE line (unfolded lines only), its name and parameters, and its value. */
const RULE_LINE = /^((?:RRULE|EXRULE)(?:;[^:\r\n]*)?):([^\r\n]*)$/gim;

/**
 * A rule read leniently where its meaning is plain: spaces around its separators
 * ("BYDAY=MO, TU") and lowercase names and values ("freq=weekly") are what producers mean. Space at
 * the end of the line is left alone: the shared corpus holds such a file as one to refuse.
 */
function lenientRule(value: string): string {
  return value.replace(/\s*([;,=])\s*/g, '$1').toUpperCase();
}

/**
 * 1-based line number of the line ical.js quoted at the end of its message. The quoted text may
 * itself contain quotes, so each opening quote is tried until the text is found.
 */
function lineOf(text: string, message: string): number | null {
  if (!message.endsWith('"')) return null;
  for (
    let open = message.indexOf('"');
    open >= 0 && open < message.length - 4;
    open = message.indexOf('"', open + 1)
  ) {
    const needle = message
      .slice(open + 1, -1)
      .replace(/^[;:]/, '')
      .slice(0, 60);
    const index = needle.length < 3 ? -1 : text.indexOf(needle);
    if (index < 0) continue;
    let line = 1;
    for (let i = text.indexOf('\n'); i >= 0 && i < index; i = text.indexOf('\n', i + 1)) line++;
    return line;
  }
  return null;
}

/**
 * The VCALENDAR components of a text (a file may hold several, and ical.js then returns an array).
 * Errors name the line when ical.js quoted it.
 */
export function parseCalendars(text: string): ICAL.Component[] {
  if (!/BEGIN:VCALENDAR/i.test(text)) throw new IcalParseError('no BEGIN:VCALENDAR found');
  let parsed: unknown;
  try {
    parsed = ICAL.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const line = lineOf(text, message);
    throw new IcalParseError(line === null ? message : `line ${line}: ${message}`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new IcalParseError('no iCalendar component found');
  const roots: unknown[] = typeof parsed[0] === 'string' ? [parsed] : parsed;
  const calendars = roots.map((root) => new ICAL.Component(root as unknown[]));
  const found = calendars.filter((c) => c.name === 'vcalendar');
  if (found.length === 0) throw new IcalParseError('no VCALENDAR component found');
  return found;
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
