import { seededRandom } from './support.js';

const MS_PER_MINUTE = 60_000;
const MS_PER_DAY = 86_400_000;

const BERLIN = [
  'BEGIN:VTIMEZONE',
  'TZID:Europe/Berlin',
  'BEGIN:DAYLIGHT',
  'TZOFFSETFROM:+0100',
  'TZOFFSETTO:+0200',
  'TZNAME:CEST',
  'DTSTART:19700329T020000',
  'RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU',
  'END:DAYLIGHT',
  'BEGIN:STANDARD',
  'TZOFFSETFROM:+0200',
  'TZOFFSETTO:+0100',
  'TZNAME:CET',
  'DTSTART:19701025T030000',
  'RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU',
  'END:STANDARD',
  'END:VTIMEZONE',
];

const TITLES = [
  'Team sync',
  'Dentist',
  '1:1 with Maria',
  'Project review',
  'Lunch with clients',
  'Physiotherapy',
  'Quarterly planning',
  'Yoga',
  'Parent-teacher meeting',
  'Flight to Lisbon',
];

/** 20261121T093000, the wall-clock fields of `ms` read as UTC; with a Z when the time is UTC. */
function stamp(ms: number, utc: boolean): string {
  const text = new Date(ms).toISOString().replace(/[-:]/g, '').slice(0, 15);
  return utc ? `${text}Z` : text;
}

function dateOnly(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

/** DTSTART/DTEND-style property: in UTC, or in Europe/Berlin wall-clock time. */
function timeProperty(name: string, wallClock: number, berlin: boolean): string {
  return berlin ? `${name};TZID=Europe/Berlin:${stamp(wallClock, false)}` : `${name}:${stamp(wallClock, true)}`;
}

export type CalendarObject = { name: string; ics: string; recurring: boolean };

/**
 * One calendar as people keep them: `series` weekly recurring series (open-ended, COUNT or UNTIL;
 * 2 in 5 with an EXDATE and a moved occurrence in the same object; in UTC or Europe/Berlin with its
 * VTIMEZONE) and `singles` one-off events (a tenth all-day, some transparent or cancelled), all
 * starting within half a year either side of `today` (a UTC midnight). The same every run for a seed.
 */
export function calendarObjects(options: {
  today: number;
  series: number;
  singles: number;
  seed: number;
  /** Days either side of today over which the objects start. */
  spreadDays?: number;
}): CalendarObject[] {
  const { today, series, singles, seed } = options;
  const spread = options.spreadDays ?? 182;
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const dtstamp = `DTSTAMP:${stamp(today - 3 * MS_PER_DAY, true)}`;
  const objects: CalendarObject[] = [];
  for (let index = 0; index < series + singles; index++) {
    const recurring = index < series;
    const uid = `${recurring ? 'series' : 'event'}-${seed}-${index}@calendar.example`;
    const name = `${recurring ? 'series' : 'event'}-${seed}-${index}`;
    const day = today + Math.floor((random() * 2 - 1) * spread) * MS_PER_DAY;
    const start = day + (7 * 60 + Math.floor(random() * 22) * 30) * MS_PER_MINUTE;
    const minutes = pick([30, 45, 60, 60, 90]);
    const end = start + minutes * MS_PER_MINUTE;
    const kind = index % 5;
    const berlin = recurring ? kind !== 2 && kind !== 3 : index % 3 === 0;
    const allDay = !recurring && index % 10 === 5;
    const common = [
      `UID:${uid}`,
      dtstamp,
      `LAST-MODIFIED:${stamp(today - 10 * MS_PER_DAY, true)}`,
      'SEQUENCE:0',
      `SUMMARY:${pick(TITLES)}`,
      random() < 0.5 ? `LOCATION:Room ${1 + Math.floor(random() * 40)}` : 'LOCATION:Online',
      `DESCRIPTION:Agenda and notes for ${name}\\, written by the organiser.`,
    ];
    const master = ['BEGIN:VEVENT', ...common];
    const overrides: string[] = [];
    if (allDay) {
      master.push(
        `DTSTART;VALUE=DATE:${dateOnly(day)}`,
        `DTEND;VALUE=DATE:${dateOnly(day + MS_PER_DAY)}`,
        'TRANSP:TRANSPARENT',
      );
    } else {
      master.push(timeProperty('DTSTART', start, berlin), timeProperty('DTEND', end, berlin));
      if (!recurring && index % 17 === 0) master.push('TRANSP:TRANSPARENT');
      if (!recurring && index % 29 === 0) master.push('STATUS:CANCELLED');
    }
    if (recurring) {
      const rule = [
        'RRULE:FREQ=WEEKLY',
        'RRULE:FREQ=WEEKLY;COUNT=40',
        `RRULE:FREQ=WEEKLY;UNTIL=${stamp(start + 200 * MS_PER_DAY, true)}`,
        'RRULE:FREQ=WEEKLY;INTERVAL=2',
        `RRULE:FREQ=WEEKLY;UNTIL=${stamp(start + 300 * MS_PER_DAY, true)}`,
      ][kind]!;
      master.push(rule);
      if (kind === 0 || kind === 2) {
        const skipped = start + 7 * MS_PER_DAY;
        const moved = start + 14 * MS_PER_DAY;
        master.push(timeProperty('EXDATE', skipped, berlin));
        overrides.push(
          'BEGIN:VEVENT',
          ...common.map((line) => (line === 'SEQUENCE:0' ? 'SEQUENCE:1' : line)),
          timeProperty('RECURRENCE-ID', moved, berlin),
          timeProperty('DTSTART', moved + 2 * 60 * MS_PER_MINUTE, berlin),
          timeProperty('DTEND', moved + 2 * 60 * MS_PER_MINUTE + minutes * MS_PER_MINUTE, berlin),
          'END:VEVENT',
        );
      }
    }
    if (index % 4 === 0) {
      master.push(
        'ORGANIZER;CN=Maria Lopez:mailto:maria@example.org',
        'ATTENDEE;CN=Sam Doe;PARTSTAT=ACCEPTED:mailto:sam@example.org',
      );
    }
    master.push('END:VEVENT');
    const usesBerlin = berlin && !allDay;
    const lines = [
      'BEGIN:VCALENDAR',
      'VERSION:2.0',
      'PRODID:-//Example Corp//Calendar 4.2//EN',
      ...(usesBerlin ? BERLIN : []),
      ...master,
      ...overrides,
      'END:VCALENDAR',
      '',
    ];
    objects.push({ name, ics: lines.join('\r\n'), recurring });
  }
  return objects;
}
