import { describe, expect, it } from 'vitest';
import { checkBookable, findSlots } from '../../src/domain/index.js';
import type { Interval } from '../../src/domain/index.js';
import { at, iso, LONG_AGO, mulberry32, query, resource, span } from './support.js';

describe('checkBookable', () => {
  const input = resource(
    'r1',
    { bufferBeforeMinutes: 15, bufferAfterMinutes: 30 },
    [span('2026-05-18T11:00:00Z', '2026-05-18T12:00:00Z')],
    [span('2026-05-18T14:00:00Z', '2026-05-18T15:00:00Z')],
  );
  const check = (start: string, end: string, now = LONG_AGO) =>
    checkBookable(input, span(`2026-05-18T${start}:00Z`, `2026-05-18T${end}:00Z`), now).map((conflict) => [
      conflict.kind,
      iso(conflict.start),
      iso(conflict.end),
    ]);

  it('accepts free time inside working hours, including time touching the buffers', () => {
    expect(check('12:30', '13:00')).toEqual([]);
    expect(check('10:15', '10:45')).toEqual([]);
  });

  it('reports the raw booking when the request overlaps its buffers', () => {
    const booking = ['booking', '2026-05-18T11:00:00Z', '2026-05-18T12:00:00Z'];
    expect(check('12:00', '12:30')).toEqual([booking]);
    expect(check('10:30', '11:00')).toEqual([booking]);
  });

  it('reports calendar events and time outside the schedule', () => {
    expect(check('14:30', '15:30')).toEqual([
      ['calendar_event', '2026-05-18T14:00:00Z', '2026-05-18T15:00:00Z'],
    ]);
    expect(check('16:30', '17:30')).toEqual([
      ['outside_schedule', '2026-05-18T16:30:00Z', '2026-05-18T17:30:00Z'],
    ]);
  });

  it('lists every conflict sorted by start', () => {
    expect(check('08:30', '15:00')).toEqual([
      ['outside_schedule', '2026-05-18T08:30:00Z', '2026-05-18T15:00:00Z'],
      ['booking', '2026-05-18T11:00:00Z', '2026-05-18T12:00:00Z'],
      ['calendar_event', '2026-05-18T14:00:00Z', '2026-05-18T15:00:00Z'],
    ]);
  });

  it('rejects requests within the minimum notice or beyond the horizon', () => {
    const strict = resource('r1', { minimumNoticeMinutes: 60, bookingHorizonDays: 1 });
    const now = at('2026-05-18T10:00:00Z');
    const outside = (start: string, end: string) => [
      { kind: 'outside_schedule', start: at(start), end: at(end) },
    ];
    expect(checkBookable(strict, span('2026-05-18T10:30:00Z', '2026-05-18T11:00:00Z'), now)).toEqual(
      outside('2026-05-18T10:30:00Z', '2026-05-18T11:00:00Z'),
    );
    expect(checkBookable(strict, span('2026-05-18T11:00:00Z', '2026-05-18T11:30:00Z'), now)).toEqual([]);
    expect(checkBookable(strict, span('2026-05-19T09:30:00Z', '2026-05-19T10:00:00Z'), now)).toEqual([]);
    expect(checkBookable(strict, span('2026-05-19T09:30:00Z', '2026-05-19T10:00:01Z'), now)).toEqual(
      outside('2026-05-19T09:30:00Z', '2026-05-19T10:00:01Z'),
    );
  });

  it('accepts a request that crosses midnight inside continuous working time', () => {
    const overnight = resource('r1', { weekly: { mon: [['20:00', '24:00']], tue: [['00:00', '04:00']] } });
    expect(checkBookable(overnight, span('2026-05-18T23:00:00Z', '2026-05-19T01:00:00Z'), LONG_AGO)).toEqual(
      [],
    );
    expect(
      checkBookable(overnight, span('2026-05-19T03:00:00Z', '2026-05-19T05:00:00Z'), LONG_AGO),
    ).toHaveLength(1);
  });

  it('accepts every slot findSlots offers (random bookings, buffers and calendars)', () => {
    const random = mulberry32(42);
    const weekStart = at('2026-05-18T00:00:00Z');
    const randomBlocks = (count: number): Interval[] =>
      Array.from({ length: count }, () => {
        const start =
          weekStart + Math.floor(random() * 7 * 96) * 900_000 + Math.floor(random() * 60) * 60_000;
        return { start, end: start + (1 + Math.floor(random() * 8)) * 900_000 };
      });
    for (let round = 0; round < 20; round++) {
      const candidate = resource(
        `r${round}`,
        {
          timeZone: round % 2 === 0 ? 'Europe/Berlin' : 'America/New_York',
          bufferBeforeMinutes: Math.floor(random() * 30),
          bufferAfterMinutes: Math.floor(random() * 30),
          minimumNoticeMinutes: Math.floor(random() * 600),
        },
        randomBlocks(10),
        randomBlocks(10),
      );
      const now = weekStart + Math.floor(random() * 86_400_000);
      const slots = findSlots(
        [candidate],
        query({
          now,
          window: span('2026-05-18T00:00:00Z', '2026-05-25T00:00:00Z'),
          durationMinutes: 45,
          intervalMinutes: 20,
        }),
      );
      expect(slots.length).toBeGreaterThan(0);
      for (const slot of slots) expect(checkBookable(candidate, slot, now), iso(slot.start)).toEqual([]);
    }
  });
});
