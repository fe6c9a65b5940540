import { describe, expect, it } from 'vitest';
import { defaultSchedule, validateSchedule, workingIntervals } from '../../src/domain/index.js';
import type { Schedule } from '../../src/domain/index.js';
import { at, everyDay, isoSpans, span, withHours } from './support.js';

describe('defaultSchedule', () => {
  it('is Monday to Friday 09:00–17:00 with no buffers, no notice and a one-year horizon', () => {
    const schedule = defaultSchedule('Europe/Berlin');
    expect(schedule.weekly).toEqual({
      mon: [['09:00', '17:00']],
      tue: [['09:00', '17:00']],
      wed: [['09:00', '17:00']],
      thu: [['09:00', '17:00']],
      fri: [['09:00', '17:00']],
    });
    expect(schedule).toMatchObject({
      timeZone: 'Europe/Berlin',
      overrides: [],
      bufferBeforeMinutes: 0,
      bufferAfterMinutes: 0,
      minimumNoticeMinutes: 0,
      bookingHorizonDays: 365,
    });
    expect(validateSchedule(schedule)).toEqual([]);
  });
});

describe('workingIntervals with overrides and wall-time edges', () => {
  it('lets an override replace that day’s weekly hours and [] make it a day off', () => {
    const schedule = withHours('UTC', {
      overrides: [
        { localDate: '2026-05-18', intervals: [['12:00', '13:00']] },
        { localDate: '2026-05-19', intervals: [] },
        { localDate: '2026-05-23', intervals: [['10:00', '11:00']] },
      ],
    });
    expect(
      isoSpans(workingIntervals(schedule, span('2026-05-18T00:00:00Z', '2026-05-25T00:00:00Z'))),
    ).toEqual([
      ['2026-05-18T12:00:00Z', '2026-05-18T13:00:00Z'],
      ['2026-05-20T09:00:00Z', '2026-05-20T17:00:00Z'],
      ['2026-05-21T09:00:00Z', '2026-05-21T17:00:00Z'],
      ['2026-05-22T09:00:00Z', '2026-05-22T17:00:00Z'],
      ['2026-05-23T10:00:00Z', '2026-05-23T11:00:00Z'],
    ]);
  });

  it('reads 24:00 as the next local midnight and merges it with a shift starting at 00:00', () => {
    const schedule = withHours('Europe/Berlin', {
      weekly: { mon: [['22:00', '24:00']], tue: [['00:00', '02:00']] },
    });
    expect(
      isoSpans(workingIntervals(schedule, span('2026-05-18T00:00:00Z', '2026-05-20T00:00:00Z'))),
    ).toEqual([['2026-05-18T20:00:00Z', '2026-05-19T00:00:00Z']]);
  });

  it('clips to the window and includes days whose local date differs from the UTC date', () => {
    // Kiritimati is +14:00: Monday 09:00 local is Sunday 19:00Z.
    const result = workingIntervals(
      withHours('Pacific/Kiritimati'),
      span('2026-05-17T20:00:00Z', '2026-05-18T00:00:00Z'),
    );
    expect(isoSpans(result)).toEqual([['2026-05-17T20:00:00Z', '2026-05-18T00:00:00Z']]);
  });

  it('returns [] for an empty window', () => {
    expect(
      workingIntervals(withHours('UTC'), {
        start: at('2026-05-18T12:00:00Z'),
        end: at('2026-05-18T12:00:00Z'),
      }),
    ).toEqual([]);
  });

  it('merges several intervals per day and drops nothing in a continuous week', () => {
    const schedule = withHours('UTC', { weekly: everyDay([['00:00', '24:00']]) });
    expect(
      isoSpans(workingIntervals(schedule, span('2026-05-18T06:00:00Z', '2026-05-25T06:00:00Z'))),
    ).toEqual([['2026-05-18T06:00:00Z', '2026-05-25T06:00:00Z']]);
  });
});

describe('validateSchedule', () => {
  it('reports each problem under the API’s snake_case field name', () => {
    const schedule: Schedule = {
      timeZone: '+02:00',
      weekly: {
        mon: [
          ['09:00', '12:00'],
          ['25:00', '26:00'],
        ],
        tue: [['17:00', '09:00']],
        wed: [
          ['09:00', '17:00'],
          ['10:00', '11:00'],
          ['12:00', '13:00'],
        ],
        thu: [
          ['09:00', '12:00'],
          ['12:00', '24:00'],
        ],
      },
      overrides: [
        { localDate: '2026-05-18', intervals: [['24:00', '24:00']] },
        { localDate: '2026-02-30', intervals: [] },
        { localDate: '2026-05-18', intervals: [] },
      ],
      bufferBeforeMinutes: -1,
      bufferAfterMinutes: 1441,
      minimumNoticeMinutes: 1.5,
      bookingHorizonDays: 0,
    };
    expect(validateSchedule(schedule).map((problem) => problem.field)).toEqual([
      'time_zone',
      'weekly.mon[1]',
      'weekly.tue[0]',
      'weekly.wed[1]',
      'weekly.wed[2]',
      'overrides[0].intervals[0]',
      'overrides[1].date',
      'overrides[2].date',
      'buffer_before_minutes',
      'buffer_after_minutes',
      'minimum_notice_minutes',
      'booking_horizon_days',
    ]);
  });

  it('accepts limits at their bounds', () => {
    const schedule = withHours('Asia/Kathmandu', {
      bufferBeforeMinutes: 1440,
      bufferAfterMinutes: 0,
      minimumNoticeMinutes: 525_600,
      bookingHorizonDays: 3650,
      overrides: [{ localDate: '2024-02-29', intervals: [['00:00', '24:00']] }],
    });
    expect(validateSchedule(schedule)).toEqual([]);
  });

  it('flags weekday keys that are not weekdays', () => {
    const schedule = withHours('UTC', { weekly: { monday: [['09:00', '10:00']] } as Schedule['weekly'] });
    expect(validateSchedule(schedule)).toEqual([{ field: 'weekly.monday', message: expect.any(String) }]);
  });
});
