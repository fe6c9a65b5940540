/** Input larger than this is refused before parsing. */
export const ICS_MAX_BYTES = 10 * 1024 * 1024;

export type CalendarPart = { uid: string; ics: string };

export type SplitResult =
  { ok: true; parts: CalendarPart[]; warnings: string[] } | { ok: false; error: string };

/**
 * Splits a whole calendar (an ICS feed, possibly several VCALENDARs, with a BOM) into one VCALENDAR
 * per UID: the master, its RECURRENCE-ID overrides, and the VTIMEZONEs they use (X-WR-TIMEZONE is
 * carried along). VEVENTs without a UID get a stable one derived from their content.
 */
export function splitCalendar(text: string, options: { maxBytes?: number } = {}): SplitResult {
  void text;
  void options;
  throw new Error('not implemented yet');
}
