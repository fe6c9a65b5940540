import { Temporal } from 'temporal-polyfill';
import { describe, expect, it } from 'vitest';
import { workingIntervals } from '../../src/domain/index.js';
import type { WallInterval } from '../../src/domain/index.js';
import { isoSpans, mulberry32, span, withHours } from './support.js';

describe('workingIntervals across daylight-saving changes', () => {
  it('keeps New York 09:00–17:00 on the wall clock across spring-forward (2026-03-08)', () => {
    const result = workingIntervals(
      withHours('America/New_York'),
      span('2026-03-06T00:00:00Z', '2026-03-10T00:00:00Z'),
    );
    expect(isoSpans(result)).toEqual([
      ['2026-03-06T14:00:00Z', '2026-03-06T22:00:00Z'],
      ['2026-03-09T13:00:00Z', '2026-03-09T21:00:00Z'],
    ]);
  });

  it('keeps New York 09:00–17:00 on the wall clock across fall-back (2026-11-01)', () => {
    const result = workingIntervals(
      withHours('America/New_York'),
      span('2026-10-30T00:00:00Z', '2026-11-03T00:00:00Z'),
    );
    expect(isoSpans(result)).toEqual([
      ['2026-10-30T13:00:00Z', '2026-10-30T21:00:00Z'],
      ['2026-11-02T14:00:00Z', '2026-11-02T22:00:00Z'],
    ]);
  });

  it('moves a start inside the spring-forward gap forward (01:00–03:00 is one real hour)', () => {
    const schedule = withHours('America/New_York', {
      weekly: {},
      overrides: [
        { localDate: '2026-03-08', intervals: [['01:00', '03:00']] },
        { localDate: '2026-03-15', intervals: [['02:30', '04:00']] },
      ],
    });
    // 01:00 EST = 06:00Z; 03:00 EDT = 07:00Z (02:00–03:00 does not exist that night).
    expect(
      isoSpans(workingIntervals(schedule, span('2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z'))),
    ).toEqual([['2026-03-08T06:00:00Z', '2026-03-08T07:00:00Z']]);

    const gapStart = withHours('America/New_York', {
      weekly: {},
      overrides: [{ localDate: '2026-03-08', intervals: [['02:30', '04:00']] }],
    });
    // 02:30 does not exist; 'compatible' reads it with the EST offset: 07:30Z = 03:30 EDT.
    expect(
      isoSpans(workingIntervals(gapStart, span('2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z'))),
    ).toEqual([['2026-03-08T07:30:00Z', '2026-03-08T08:00:00Z']]);
  });

  it('takes the earlier instant of a repeated hour at fall-back (01:00–03:00 is three real hours)', () => {
    const schedule = withHours('America/New_York', {
      weekly: {},
      overrides: [{ localDate: '2026-11-01', intervals: [['01:00', '03:00']] }],
    });
    // 01:00 happens twice; the earlier one is 01:00 EDT = 05:00Z. 03:00 EST = 08:00Z.
    expect(
      isoSpans(workingIntervals(schedule, span('2026-10-31T00:00:00Z', '2026-11-03T00:00:00Z'))),
    ).toEqual([['2026-11-01T05:00:00Z', '2026-11-01T08:00:00Z']]);
  });

  it('follows Europe/Berlin across 2026-03-29 and 2026-10-25', () => {
    const berlin = withHours('Europe/Berlin');
    expect(isoSpans(workingIntervals(berlin, span('2026-03-27T00:00:00Z', '2026-03-31T00:00:00Z')))).toEqual([
      ['2026-03-27T08:00:00Z', '2026-03-27T16:00:00Z'],
      ['2026-03-30T07:00:00Z', '2026-03-30T15:00:00Z'],
    ]);
    expect(isoSpans(workingIntervals(berlin, span('2026-10-23T00:00:00Z', '2026-10-27T00:00:00Z')))).toEqual([
      ['2026-10-23T07:00:00Z', '2026-10-23T15:00:00Z'],
      ['2026-10-26T08:00:00Z', '2026-10-26T16:00:00Z'],
    ]);
  });

  it('handles the Berlin gap (02:00–03:00 on 2026-03-29) and repeated hour (02:00–03:00 on 2026-10-25)', () => {
    const schedule = withHours('Europe/Berlin', {
      weekly: {},
      overrides: [
        { localDate: '2026-03-29', intervals: [['01:00', '04:00']] },
        { localDate: '2026-10-25', intervals: [['01:00', '04:00']] },
      ],
    });
    expect(
      isoSpans(workingIntervals(schedule, span('2026-03-01T00:00:00Z', '2026-11-01T00:00:00Z'))),
    ).toEqual([
      ['2026-03-29T00:00:00Z', '2026-03-29T02:00:00Z'],
      ['2026-10-24T23:00:00Z', '2026-10-25T03:00:00Z'],
    ]);
  });

  it('maps Asia/Kolkata (+05:30) 09:00–17:00 to 03:30Z–11:30Z', () => {
    expect(
      isoSpans(
        workingIntervals(withHours('Asia/Kolkata'), span('2026-05-18T00:00:00Z', '2026-05-19T00:00:00Z')),
      ),
    ).toEqual([['2026-05-18T03:30:00Z', '2026-05-18T11:30:00Z']]);
  });

  it('maps Asia/Kathmandu (+05:45) 09:00–17:00 to 03:15Z–11:15Z', () => {
    expect(
      isoSpans(
        workingIntervals(withHours('Asia/Kathmandu'), span('2026-05-18T00:00:00Z', '2026-05-19T00:00:00Z')),
      ),
    ).toEqual([['2026-05-18T03:15:00Z', '2026-05-18T11:15:00Z']]);
  });

  it('follows the 30-minute Lord Howe shifts in April (+11:00 → +10:30) and October (+10:30 → +11:00)', () => {
    const lordHowe = withHours('Australia/Lord_Howe');
    expect(
      isoSpans(workingIntervals(lordHowe, span('2026-04-02T12:00:00Z', '2026-04-06T12:00:00Z'))),
    ).toEqual([
      ['2026-04-02T22:00:00Z', '2026-04-03T06:00:00Z'],
      ['2026-04-05T22:30:00Z', '2026-04-06T06:30:00Z'],
    ]);
    expect(
      isoSpans(workingIntervals(lordHowe, span('2026-10-01T12:00:00Z', '2026-10-05T12:00:00Z'))),
    ).toEqual([
      ['2026-10-01T22:30:00Z', '2026-10-02T06:30:00Z'],
      ['2026-10-04T22:00:00Z', '2026-10-05T06:00:00Z'],
    ]);
  });

  it('handles the Lord Howe half-hour repeat (01:30–02:00 on 2026-04-05) and gap (02:00–02:30 on 2026-10-04)', () => {
    const schedule = withHours('Australia/Lord_Howe', {
      weekly: {},
      overrides: [
        { localDate: '2026-04-05', intervals: [['01:45', '03:00']] },
        { localDate: '2026-10-04', intervals: [['02:15', '03:00']] },
      ],
    });
    // 01:45 first occurs at +11:00 (14:45Z); 03:00 is +10:30 (16:30Z).
    // 02:15 does not exist; read at +10:30 it is 15:45Z (= 02:45 at +11:00); 03:00 at +11:00 is 16:00Z.
    expect(
      isoSpans(workingIntervals(schedule, span('2026-04-01T00:00:00Z', '2026-10-10T00:00:00Z'))),
    ).toEqual([
      ['2026-04-04T14:45:00Z', '2026-04-04T16:30:00Z'],
      ['2026-10-03T15:45:00Z', '2026-10-03T16:00:00Z'],
    ]);
  });

  it('agrees with Temporal compatible disambiguation for random wall times in many zones', () => {
    const zones = [
      'America/New_York',
      'Europe/Berlin',
      'Australia/Lord_Howe',
      'America/Santiago',
      'Asia/Kathmandu',
      'Pacific/Chatham',
      'America/St_Johns',
    ];
    const random = mulberry32(7);
    for (let round = 0; round < 300; round++) {
      const timeZone = zones[round % zones.length]!;
      const date = Temporal.PlainDate.from('2026-01-01').add({ days: Math.floor(random() * 365) });
      const startMinute = Math.floor(random() * 96) * 15;
      const endMinute = startMinute + 15 + Math.floor(random() * 8) * 15;
      const wall = (minutes: number): string =>
        minutes >= 1440
          ? '24:00'
          : `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
      const interval: WallInterval = [wall(startMinute), wall(Math.min(endMinute, 1440))];
      const schedule = withHours(timeZone, {
        weekly: {},
        overrides: [{ localDate: date.toString(), intervals: [interval] }],
      });
      const expected = (minutes: number): number =>
        minutes >= 1440
          ? date.add({ days: 1 }).toZonedDateTime({ timeZone }).epochMilliseconds
          : date
              .toPlainDateTime({ hour: Math.floor(minutes / 60), minute: minutes % 60 })
              .toZonedDateTime(timeZone, { disambiguation: 'compatible' }).epochMilliseconds;
      const start = expected(startMinute);
      const end = expected(Math.min(endMinute, 1440));
      const window = { start: start - 3 * 86_400_000, end: end + 3 * 86_400_000 };
      expect(
        workingIntervals(schedule, window),
        `${timeZone} ${date.toString()} ${interval.join('–')}`,
      ).toEqual(end > start ? [{ start, end }] : []);
    }
  });
  it('agrees with Temporal for every quarter hour of every 2026 transition day in those zones', () => {
    let transitionDays = 0;
    for (const timeZone of [
      'America/New_York',
      'Australia/Lord_Howe',
      'America/Santiago',
      'Pacific/Chatham',
    ]) {
      let cursor: Temporal.ZonedDateTime | null = Temporal.ZonedDateTime.from({
        year: 2026,
        month: 1,
        day: 1,
        timeZone,
      });
      for (;;) {
        cursor = cursor.getTimeZoneTransition('next');
        if (cursor === null || cursor.year > 2026) break;
        const date = cursor.toPlainDate();
        transitionDays++;
        const quarters = Array.from({ length: 96 }, (_, q) => q * 15);
        const hhmm = (minutes: number): string =>
          `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
        for (const minutes of quarters) {
          const schedule = withHours(timeZone, {
            weekly: {},
            overrides: [{ localDate: date.toString(), intervals: [[hhmm(minutes), '24:00']] }],
          });
          const start = date
            .toPlainDateTime({ hour: Math.floor(minutes / 60), minute: minutes % 60 })
            .toZonedDateTime(timeZone, { disambiguation: 'compatible' }).epochMilliseconds;
          const end = date.add({ days: 1 }).toZonedDateTime({ timeZone }).epochMilliseconds;
          const window = { start: start - 2 * 86_400_000, end: end + 2 * 86_400_000 };
          expect(
            workingIntervals(schedule, window),
            `${timeZone} ${date.toString()} ${hhmm(minutes)}`,
          ).toEqual([{ start, end }]);
        }
      }
    }
    expect(transitionDays).toBe(8);
  });
});
