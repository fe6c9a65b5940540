import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ExpandOptions, ExpandResult } from '../../src/ical/expand-object.js';
import { expandObject } from '../../src/ical/expand-object.js';
import { resolveTzid } from '../../src/ical/time-zones.js';

const YEAR_2026 = { start: Date.parse('2026-01-01T00:00:00Z'), end: Date.parse('2027-01-01T00:00:00Z') };
const BERLIN: ExpandOptions = { floatingZone: 'Europe/Berlin' };

function calendar(...lines: string[]): string {
  return ['BEGIN:VCALENDAR', 'VERSION:2.0', 'PRODID:-//test//EN', ...lines, 'END:VCALENDAR', ''].join('\r\n');
}

function event(...lines: string[]): string[] {
  return ['BEGIN:VEVENT', 'DTSTAMP:20260101T000000Z', ...lines, 'END:VEVENT'];
}

function expanded(result: ExpandResult) {
  if (!result.ok) throw new Error(result.error);
  return result;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

function spans(result: ExpandResult): string[] {
  return expanded(result).occurrences.map((o) => `${iso(o.startsAt)}/${iso(o.endsAt)}`);
}

const CUSTOM_TZ = [
  'BEGIN:VTIMEZONE',
  'TZID:Customized Time Zone',
  'BEGIN:STANDARD',
  'DTSTART:16010101T030000',
  'TZOFFSETFROM:+0200',
  'TZOFFSETTO:+0100',
  'RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10',
  'END:STANDARD',
  'BEGIN:DAYLIGHT',
  'DTSTART:16010101T020000',
  'TZOFFSETFROM:+0100',
  'TZOFFSETTO:+0200',
  'RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3',
  'END:DAYLIGHT',
  'END:VTIMEZONE',
];

const SERIES = calendar(
  ...event(
    'UID:event1',
    'SUMMARY:Weekly',
    'DTSTART;TZID=Europe/Berlin:20260105T090000',
    'DTEND;TZID=Europe/Berlin:20260105T100000',
    'RRULE:FREQ=WEEKLY;COUNT=15',
    'EXDATE;TZID=Europe/Berlin:20260112T090000',
    'LAST-MODIFIED:20260102T030405Z',
  ),
  ...event(
    'UID:event1',
    'SUMMARY:Moved',
    'RECURRENCE-ID;TZID=Europe/Berlin:20260119T090000',
    'DTSTART;TZID=Europe/Berlin:20260119T110000',
    'DTEND;TZID=Europe/Berlin:20260119T120000',
  ),
);

describe('expandObject: the reference series', () => {
  it('gives 14 occurrences, 08:00Z before DST and 07:00Z after, the override at 10:00Z', () => {
    const result = expanded(expandObject(SERIES, YEAR_2026, { floatingZone: 'Asia/Tokyo' }));
    expect(result.truncated).toBe(false);
    expect(result.occurrences).toHaveLength(14);
    const starts = result.occurrences.map((o) => iso(o.startsAt));
    expect(starts).not.toContain('2026-01-12T08:00:00Z');
    expect(starts[0]).toBe('2026-01-05T08:00:00Z');
    const moved = result.occurrences[1]!;
    expect(moved).toMatchObject({ title: 'Moved', recurrenceId: '2026-01-19T08:00:00Z' });
    expect(iso(moved.startsAt)).toBe('2026-01-19T10:00:00Z');
    expect(iso(moved.endsAt)).toBe('2026-01-19T11:00:00Z');
    for (const o of result.occurrences.slice(2)) {
      const hour = o.startsAt < Date.parse('2026-03-29T01:00:00Z') ? 8 : 7;
      expect(new Date(o.startsAt).getUTCHours(), iso(o.startsAt)).toBe(hour);
      expect(o.endsAt - o.startsAt).toBe(3_600_000);
      expect(o.recurrenceId).toBe(iso(o.startsAt));
    }
    expect(starts.at(-1)).toBe('2026-04-13T07:00:00Z');
    expect(result.summary).toEqual({
      uid: 'event1',
      bookingId: null,
      title: 'Weekly',
      recurring: true,
      sequence: 0,
      lastModified: Date.parse('2026-01-02T03:04:05Z'),
      master: {
        startsAt: Date.parse('2026-01-05T08:00:00Z'),
        endsAt: Date.parse('2026-01-05T09:00:00Z'),
        allDay: false,
        status: 'confirmed',
        transparency: 'opaque',
      },
    });
  });

  it('returns only what overlaps the window', () => {
    const window = { start: Date.parse('2026-03-23T08:30:00Z'), end: Date.parse('2026-04-06T07:00:00Z') };
    expect(spans(expandObject(SERIES, window, BERLIN))).toEqual([
      '2026-03-23T08:00:00Z/2026-03-23T09:00:00Z',
      '2026-03-30T07:00:00Z/2026-03-30T08:00:00Z',
    ]);
  });
});

describe('expandObject: time zones', () => {
  const at9 = (tzid: string) =>
    calendar(
      ...event(
        'UID:z',
        `DTSTART;TZID=${tzid}:20260105T090000`,
        'DURATION:PT1H',
        'RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=13',
      ),
    );

  it.each([
    ['W. Europe Standard Time', '2026-01-05T08:00:00Z', '2026-03-30T07:00:00Z'],
    [
      '"(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna"',
      '2026-01-05T08:00:00Z',
      '2026-03-30T07:00:00Z',
    ],
    ['/Europe/Stockholm', '2026-01-05T08:00:00Z', '2026-03-30T07:00:00Z'],
    ['/freeassociation.sourceforge.net/Tzfile/Europe/London', '2026-01-05T09:00:00Z', '2026-03-30T08:00:00Z'],
    ['Eastern Standard Time', '2026-01-05T14:00:00Z', '2026-03-30T13:00:00Z'],
    ['"(UTC-05:00) Eastern Time (US & Canada)"', '2026-01-05T14:00:00Z', '2026-03-30T13:00:00Z'],
    ['europe/berlin', '2026-01-05T08:00:00Z', '2026-03-30T07:00:00Z'],
  ])('reads TZID %s', (tzid, first, last) => {
    const result = expanded(expandObject(at9(tzid), YEAR_2026, { floatingZone: 'Asia/Tokyo' }));
    expect(iso(result.occurrences[0]!.startsAt)).toBe(first);
    expect(iso(result.occurrences.at(-1)!.startsAt)).toBe(last);
    expect(result.warnings).toBeUndefined();
  });

  it('maps Windows, display and prefixed names to IANA zones', () => {
    expect(resolveTzid('W. Europe Standard Time')).toBe('Europe/Berlin');
    expect(resolveTzid('Tokyo Standard Time')).toBe('Asia/Tokyo');
    expect(resolveTzid('(UTC+07:00) Bangkok, Hanoi, Jakarta')).toBe('Asia/Bangkok');
    expect(resolveTzid('(GMT+10:00) Canberra, Melbourne, Sydney')).toBe('Australia/Sydney');
    expect(resolveTzid('Canberra, Melbourne, Sydney')).toBe('Australia/Sydney');
    expect(resolveTzid('/softwarestudio.org/Olson_20011030_5/America/New_York')).toBe('America/New_York');
    expect(resolveTzid('Customized Time Zone 1')).toBeNull();
  });

  it('converts an unknown TZID with its own VTIMEZONE through that definition', () => {
    const ics = calendar(...CUSTOM_TZ, ...at9('Customized Time Zone').split('\r\n').slice(3, -2));
    const result = expanded(
      expandObject(ics, YEAR_2026, { floatingZone: 'Asia/Tokyo', timeBudgetMs: 60_000 }),
    );
    expect(iso(result.occurrences[0]!.startsAt)).toBe('2026-01-05T08:00:00Z');
    expect(iso(result.occurrences.at(-1)!.startsAt)).toBe('2026-03-30T07:00:00Z');
  });

  it('reads an unknown TZID without VTIMEZONE in the floating zone, with a warning', () => {
    const result = expanded(
      expandObject(at9('Mars/Olympus'), YEAR_2026, { floatingZone: 'America/New_York' }),
    );
    expect(iso(result.occurrences[0]!.startsAt)).toBe('2026-01-05T14:00:00Z');
    expect(result.warnings?.[0]).toMatch(/Mars\/Olympus/);
  });

  it('reads floating times in floatingZone, or in X-WR-TIMEZONE when the calendar names one', () => {
    const floating = event('UID:f', 'DTSTART:20260105T090000', 'DTEND:20260105T093000');
    expect(spans(expandObject(calendar(...floating), YEAR_2026, BERLIN))).toEqual([
      '2026-01-05T08:00:00Z/2026-01-05T08:30:00Z',
    ]);
    const withWr = calendar('X-WR-TIMEZONE:America/New_York', ...floating);
    expect(spans(expandObject(withWr, YEAR_2026, BERLIN))).toEqual([
      '2026-01-05T14:00:00Z/2026-01-05T14:30:00Z',
    ]);
  });

  it('honours a UTC UNTIL exactly against local occurrences', () => {
    const ics = calendar(
      ...event(
        'UID:u',
        'DTSTART;TZID=Europe/Berlin:20260323T090000',
        'RRULE:FREQ=DAILY;UNTIL=20260330T070000Z',
      ),
    );
    const result = expanded(expandObject(ics, YEAR_2026, BERLIN));
    expect(result.occurrences).toHaveLength(8);
    expect(iso(result.occurrences.at(-1)!.startsAt)).toBe('2026-03-30T07:00:00Z');
  });
});

describe('expandObject: all-day events', () => {
  it('spans local midnight to midnight in floatingZone across the DST change', () => {
    const ics = calendar(...event('UID:a', 'DTSTART;VALUE=DATE:20260307', 'RRULE:FREQ=DAILY;COUNT=3'));
    const result = expanded(expandObject(ics, YEAR_2026, { floatingZone: 'America/New_York' }));
    expect(spans(result)).toEqual([
      '2026-03-07T05:00:00Z/2026-03-08T05:00:00Z',
      '2026-03-08T05:00:00Z/2026-03-09T04:00:00Z',
      '2026-03-09T04:00:00Z/2026-03-10T04:00:00Z',
    ]);
    expect(result.occurrences.every((o) => o.allDay)).toBe(true);
    expect(result.occurrences.map((o) => o.recurrenceId)).toEqual(['2026-03-07', '2026-03-08', '2026-03-09']);
  });

  it('takes DTEND or DURATION for the length', () => {
    const withEnd = event('UID:b', 'DTSTART;VALUE=DATE:20260701', 'DTEND;VALUE=DATE:20260703');
    const withDuration = event('UID:c', 'DTSTART;VALUE=DATE:20260701', 'DURATION:P2D');
    for (const ics of [calendar(...withEnd), calendar(...withDuration)]) {
      expect(spans(expandObject(ics, YEAR_2026, BERLIN))).toEqual([
        '2026-06-30T22:00:00Z/2026-07-02T22:00:00Z',
      ]);
    }
  });
});

describe('expandObject: exceptions, RDATE, status and transparency', () => {
  it('removes EXDATEs given several per line, on several lines, with TZID and in UTC', () => {
    const ics = calendar(
      ...event(
        'UID:x',
        'DTSTART;TZID=America/New_York:20260601T100000',
        'DURATION:PT30M',
        'RRULE:FREQ=DAILY;COUNT=7',
        'EXDATE;TZID=America/New_York:20260602T100000,20260603T100000',
        'EXDATE:20260605T140000Z',
      ),
    );
    const days = expanded(expandObject(ics, YEAR_2026, BERLIN)).occurrences.map((o) =>
      iso(o.startsAt).slice(8, 10),
    );
    expect(days).toEqual(['01', '04', '06', '07']);
  });

  it('reports a cancelled override as a cancelled occurrence', () => {
    const ics = calendar(
      ...event('UID:s', 'DTSTART:20260601T100000Z', 'DURATION:PT1H', 'RRULE:FREQ=DAILY;COUNT=3'),
      ...event(
        'UID:s',
        'RECURRENCE-ID:20260602T100000Z',
        'DTSTART:20260602T100000Z',
        'DURATION:PT1H',
        'STATUS:CANCELLED',
      ),
    );
    const result = expanded(expandObject(ics, YEAR_2026, BERLIN));
    expect(result.occurrences.map((o) => o.status)).toEqual(['confirmed', 'cancelled', 'confirmed']);
  });

  it('treats overrides without their master as standalone events', () => {
    const ics = calendar(
      ...event(
        'UID:o',
        'RECURRENCE-ID:20260602T100000Z',
        'DTSTART:20260602T120000Z',
        'DTEND:20260602T130000Z',
        'SUMMARY:Only',
      ),
    );
    const result = expanded(expandObject(ics, YEAR_2026, BERLIN));
    expect(spans(result)).toEqual(['2026-06-02T12:00:00Z/2026-06-02T13:00:00Z']);
    expect(result.summary.master).toBeNull();
    expect(result.summary.title).toBe('Only');
  });

  it('expands RDATE as DATE-TIME, PERIOD with an end, and PERIOD with a duration', () => {
    const ics = calendar(
      ...event(
        'UID:r',
        'DTSTART:20260110T090000Z',
        'DTEND:20260110T100000Z',
        'RDATE:20260112T090000Z',
        'RDATE;VALUE=PERIOD:20260114T100000Z/20260114T120000Z,20260115T100000Z/PT3H',
      ),
    );
    expect(spans(expandObject(ics, YEAR_2026, BERLIN))).toEqual([
      '2026-01-10T09:00:00Z/2026-01-10T10:00:00Z',
      '2026-01-12T09:00:00Z/2026-01-12T10:00:00Z',
      '2026-01-14T10:00:00Z/2026-01-14T12:00:00Z',
      '2026-01-15T10:00:00Z/2026-01-15T13:00:00Z',
    ]);
  });

  it('maps TRANSP:TRANSPARENT and STATUS:TENTATIVE', () => {
    const ics = calendar(
      ...event('UID:t', 'DTSTART:20260110T090000Z', 'TRANSP:TRANSPARENT', 'STATUS:TENTATIVE'),
    );
    const [only] = expanded(expandObject(ics, YEAR_2026, BERLIN)).occurrences;
    expect(only).toMatchObject({ transparency: 'transparent', status: 'tentative', recurrenceId: null });
  });
});

describe('expandObject: bounds and hostile input', () => {
  const quick = (ics: string, options: ExpandOptions = BERLIN) => {
    const started = performance.now();
    const result = expandObject(ics, YEAR_2026, options);
    expect(performance.now() - started).toBeLessThan(2000);
    return result;
  };

  it('refuses an absurd DURATION with an error naming it', () => {
    const result = quick(
      calendar(...event('UID:h', 'DTSTART:20260101T000000Z', 'DURATION:P999999999999999999W')),
    );
    expect(result).toMatchObject({ ok: false });
    expect(!result.ok && result.error).toMatch(/DURATION/);
  });

  it('truncates an endless FREQ=SECONDLY rule', () => {
    const result = quick(calendar(...event('UID:h', 'DTSTART:20260101T000000Z', 'RRULE:FREQ=SECONDLY')));
    expect(expanded(result).truncated).toBe(true);
    expect(expanded(result).occurrences.length).toBeLessThanOrEqual(10_000);
  });

  it('handles a series that starts in year 0001', () => {
    const skippable = quick(calendar(...event('UID:h', 'DTSTART:00010101T090000Z', 'RRULE:FREQ=DAILY')));
    expect(expanded(skippable).occurrences).toHaveLength(365);
    // The engine starts near the window rather than walking 2,025 years of instances.
    const twice = quick(
      calendar(...event('UID:h', 'DTSTART:00010101T090000Z', 'RRULE:FREQ=DAILY;BYHOUR=9,10')),
    );
    expect(expanded(twice).truncated).toBe(false);
    expect(expanded(twice).occurrences).toHaveLength(730);
    // COUNT counts from DTSTART, so those instances are walked and the series is cut at the budget.
    const counted = quick(
      calendar(...event('UID:h', 'DTSTART:00010101T090000Z', 'RRULE:FREQ=DAILY;BYHOUR=9,10;COUNT=10000000')),
    );
    expect(expanded(counted).truncated).toBe(true);
    expect(expanded(counted).occurrences).toEqual([]);
  });

  it('ends a rule that never matches at once, not at the time budget', () => {
    for (const rule of [
      'FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30',
      'FREQ=YEARLY;BYMONTH=4,6,9,11;BYMONTHDAY=31,-31',
      'FREQ=YEARLY;BYMONTH=1;BYYEARDAY=60,-300',
      'FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=5',
      // Not caught by the day filters: the engine's walk over the window finds nothing.
      'FREQ=DAILY;BYWEEKNO=1;BYMONTH=6',
      'FREQ=MONTHLY;BYDAY=5MO;BYMONTH=2;BYMONTHDAY=1,2,3,4,5,6,7;COUNT=3',
    ]) {
      const started = performance.now();
      const result = expanded(
        expandObject(calendar(...event('UID:h', 'DTSTART:20260101T090000Z', `RRULE:${rule}`)), YEAR_2026, {
          floatingZone: 'UTC',
          timeBudgetMs: 5_000,
        }),
      );
      expect(performance.now() - started, rule).toBeLessThan(200);
      expect(result.truncated, rule).toBe(false);
      // DTSTART is always the first instance (RFC 5545 §3.8.5.3), matching the rule or not.
      expect(result.occurrences, rule).toHaveLength(1);
    }
  });

  it('reads a rule stepping more than a century as its DTSTART alone', () => {
    const ics = calendar(
      ...event('UID:h', 'DTSTART:20260105T090000Z', 'RRULE:FREQ=WEEKLY;INTERVAL=99999999;BYDAY=MO'),
    );
    const result = expanded(quick(ics));
    expect(result.occurrences).toHaveLength(1);
    expect(result.warnings?.[0]).toMatch(/INTERVAL/);
  });

  it('honours maxOccurrences', () => {
    const ics = calendar(...event('UID:h', 'DTSTART:20260101T090000Z', 'RRULE:FREQ=DAILY;BYHOUR=1,2,3'));
    const result = expanded(quick(ics, { floatingZone: 'UTC', maxOccurrences: 50 }));
    expect(result.truncated).toBe(true);
    expect(result.occurrences.length).toBeLessThanOrEqual(50);
  });

  it('skips ahead on old series exactly as full iteration does', () => {
    const window = { start: Date.parse('2026-03-01T00:00:00Z'), end: Date.parse('2026-05-01T00:00:00Z') };
    const big = { floatingZone: 'Europe/Berlin', maxOccurrences: 1_000_000, timeBudgetMs: 20_000 };
    for (const [start, rule] of [
      ['DTSTART;TZID=Europe/Berlin:20010203T093000', 'FREQ=DAILY'],
      ['DTSTART;TZID=Europe/Berlin:20010203T093000', 'FREQ=DAILY;INTERVAL=3'],
      ['DTSTART;TZID=Europe/Berlin:20010203T023000', 'FREQ=DAILY;INTERVAL=2;BYDAY=MO,WE,FR'],
      ['DTSTART;TZID=Europe/Berlin:20010203T093000', 'FREQ=DAILY;BYMONTH=3,4;BYMONTHDAY=1,15,29,31'],
      ['DTSTART;TZID=Europe/Berlin:20010203T093000', 'FREQ=WEEKLY'],
      ['DTSTART;TZID=Europe/Berlin:20010203T093000', 'FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU'],
      ['DTSTART;TZID=Europe/Berlin:20010203T093000', 'FREQ=WEEKLY;INTERVAL=3;BYDAY=SU,MO;WKST=SU'],
      ['DTSTART;VALUE=DATE:20010203', 'FREQ=WEEKLY;INTERVAL=2;BYDAY=SA'],
    ]) {
      const ics = (r: string) => calendar(...event('UID:k', start!, 'DURATION:PT45M', `RRULE:${r}`));
      const skipped = expanded(expandObject(ics(rule!), window, big));
      const full = expanded(expandObject(ics(`${rule};COUNT=100000`), window, big));
      expect(skipped.occurrences.length, rule).toBeGreaterThan(0);
      expect(skipped.occurrences, rule).toEqual(full.occurrences);
    }
  });

  it('never throws: garbage, oversize and unclosed input become errors', () => {
    expect(expandObject('garbage', YEAR_2026, BERLIN)).toMatchObject({ ok: false });
    const unclosed = expandObject('BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n', YEAR_2026, BERLIN);
    expect(!unclosed.ok && unclosed.error).toMatch(/did not end/);
    const huge = expandObject('X'.repeat(11 * 1024 * 1024), YEAR_2026, BERLIN);
    expect(!huge.ok && huge.error).toMatch(/larger than/);
    const badRule = expandObject(
      calendar(...event('UID:b', 'DTSTART:20260101T000000Z', 'RRULE:FREQ=FOO')),
      YEAR_2026,
      BERLIN,
    );
    expect(!badRule.ok && badRule.error).toMatch(/frequency/);
    expect(expandObject(SERIES, YEAR_2026, { floatingZone: 'Nowhere/Land' })).toMatchObject({ ok: false });
  });
});

describe('expandObject: independence from the process time zone', () => {
  it('gives identical instants under TZ=UTC and TZ=Asia/Tokyo', () => {
    const module = fileURLToPath(new URL('../../src/ical/expand-object.ts', import.meta.url));
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const inputs = [
      SERIES,
      calendar(...event('UID:f', 'DTSTART:20260105T090000', 'RRULE:FREQ=WEEKLY;COUNT=20')),
      calendar(...event('UID:a', 'DTSTART;VALUE=DATE:20260307', 'RRULE:FREQ=DAILY;COUNT=3')),
      calendar(
        ...event('UID:w', 'DTSTART;TZID=Pacific Standard Time:20260305T090000', 'RRULE:FREQ=DAILY;COUNT=10'),
      ),
      calendar(...event('UID:m', 'DTSTART;TZID=Mars/Olympus:20260305T090000', 'RRULE:FREQ=DAILY;COUNT=3')),
      calendar(
        ...CUSTOM_TZ,
        ...event('UID:c', 'DTSTART;TZID=Customized Time Zone:20260327T090000', 'RRULE:FREQ=DAILY;COUNT=4'),
      ),
    ];
    const script = `
      const { expandObject } = await import(${JSON.stringify(module)});
      const inputs = JSON.parse(process.env.ICS_INPUTS);
      const window = { start: Date.UTC(2026, 0, 1), end: Date.UTC(2027, 0, 1) };
      const out = inputs.map((ics) => expandObject(ics, window, { floatingZone: 'Europe/Berlin', timeBudgetMs: 60_000 }));
      process.stdout.write(JSON.stringify(out));`;
    const run = (tz: string) =>
      execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: root,
        env: { ...process.env, TZ: tz, ICS_INPUTS: JSON.stringify(inputs) },
        encoding: 'utf8',
      });
    const utc = JSON.parse(run('UTC'));
    const tokyo = JSON.parse(run('Asia/Tokyo'));
    expect(tokyo).toEqual(utc);
    expect(utc[1].occurrences[0].startsAt).toBe(Date.parse('2026-01-05T08:00:00Z'));
    expect(utc[3].occurrences[0].startsAt).toBe(Date.parse('2026-03-05T17:00:00Z'));
    expect(utc[3].occurrences.at(-1).startsAt).toBe(Date.parse('2026-03-14T16:00:00Z'));
    expect(utc[4].occurrences[0].startsAt).toBe(Date.parse('2026-03-05T08:00:00Z'));
    expect(utc[5].occurrences.map((o: { startsAt: number }) => o.startsAt)).toEqual(
      ['2026-03-27T08:00:00Z', '2026-03-28T08:00:00Z', '2026-03-29T07:00:00Z', '2026-03-30T07:00:00Z'].map(
        Date.parse,
      ),
    );
  });
});
