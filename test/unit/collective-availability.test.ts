import { describe, expect, it } from 'vitest';
import { findSlots } from '../../src/domain/index.js';
import type { Interval } from '../../src/domain/index.js';
import { at, iso, query, resource, span, starts } from './support.js';

describe("findSlots mode 'all' (collective)", () => {
  it('requires every resource to be free and lists all of them', () => {
    const a = resource('a', {}, [span('2026-05-18T09:00:00Z', '2026-05-18T12:00:00Z')]);
    const b = resource('b', {}, [], [span('2026-05-18T14:00:00Z', '2026-05-18T17:00:00Z')]);
    const slots = findSlots([a, b], query({ mode: 'all', intervalMinutes: 60, durationMinutes: 60 }));
    expect(slots.map((slot) => [iso(slot.start).slice(11, 16), slot.resourceIds])).toEqual([
      ['12:00', ['a', 'b']],
      ['13:00', ['a', 'b']],
    ]);
  });

  it('respects the strictest minimum notice among the resources', () => {
    const now = at('2026-05-18T08:00:00Z');
    const slots = findSlots(
      [resource('a'), resource('b', { minimumNoticeMinutes: 120 })],
      query({ now, mode: 'all', window: span('2026-05-18T09:00:00Z', '2026-05-18T11:00:00Z') }),
    );
    expect(starts(slots)).toEqual(['10:00', '10:30']);
  });

  const newYork = resource('ny', { timeZone: 'America/New_York' });
  const berlin = resource('berlin', { timeZone: 'Europe/Berlin' });
  const hourlyOverlap = (window: Interval): string[] =>
    findSlots(
      [newYork, berlin],
      query({
        mode: 'all',
        window,
        durationMinutes: 60,
        intervalMinutes: 60,
        now: at('2026-01-01T00:00:00Z'),
      }),
    ).map((slot) => {
      expect(slot.resourceIds).toEqual(['ny', 'berlin']);
      return iso(slot.start);
    });
  const daysAt = (dates: string[], hours: string[]): string[] =>
    dates.flatMap((date) => hours.map((hour) => `${date}T${hour}:00:00Z`));

  it('finds 3 shared hours (13–16Z) in March while only the US is on summer time, 2 otherwise', () => {
    const weekdays = (first: number, count: number): string[] =>
      Array.from({ length: count }, (_, i) => `2026-03-${String(first + i).padStart(2, '0')}`);
    expect(hourlyOverlap(span('2026-03-02T00:00:00Z', '2026-04-04T00:00:00Z'))).toEqual([
      // Both on standard time: NY 14:00Z–22:00Z, Berlin 08:00Z–16:00Z.
      ...daysAt(weekdays(2, 5), ['14', '15']),
      // US on EDT, Europe still on CET: NY 13:00Z–21:00Z, Berlin 08:00Z–16:00Z.
      ...daysAt([...weekdays(9, 5), ...weekdays(16, 5), ...weekdays(23, 5)], ['13', '14', '15']),
      // Both on summer time: NY 13:00Z–21:00Z, Berlin 07:00Z–15:00Z.
      ...daysAt(['2026-03-30', '2026-03-31', '2026-04-01', '2026-04-02', '2026-04-03'], ['13', '14']),
    ]);
  });

  it('finds 3 shared hours (13–16Z) in late October while only Europe is back on standard time', () => {
    expect(hourlyOverlap(span('2026-10-19T00:00:00Z', '2026-11-07T00:00:00Z'))).toEqual([
      // Both on summer time: 13:00Z–15:00Z.
      ...daysAt(['2026-10-19', '2026-10-20', '2026-10-21', '2026-10-22', '2026-10-23'], ['13', '14']),
      // Berlin on CET (08:00Z–16:00Z), NY still on EDT (13:00Z–21:00Z).
      ...daysAt(['2026-10-26', '2026-10-27', '2026-10-28', '2026-10-29', '2026-10-30'], ['13', '14', '15']),
      // Both on standard time: NY 14:00Z–22:00Z, Berlin 08:00Z–16:00Z.
      ...daysAt(['2026-11-02', '2026-11-03', '2026-11-04', '2026-11-05', '2026-11-06'], ['14', '15']),
    ]);
  });

  it('offers the whole 3-hour overlap as one meeting in mid-March', () => {
    const slots = findSlots(
      [newYork, berlin],
      query({
        mode: 'all',
        window: span('2026-03-16T00:00:00Z', '2026-03-17T00:00:00Z'),
        durationMinutes: 180,
        intervalMinutes: 30,
        now: at('2026-03-01T00:00:00Z'),
      }),
    );
    expect(slots.map((slot) => [iso(slot.start), iso(slot.end)])).toEqual([
      ['2026-03-16T13:00:00Z', '2026-03-16T16:00:00Z'],
    ]);
  });
});
