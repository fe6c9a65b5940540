import { describe, expect, it } from 'vitest';
import { findSlots, freeIntervals } from '../../src/domain/index.js';
import { at, everyDay, iso, isoSpans, LONG_AGO, MONDAY, query, resource, span, starts } from './support.js';

describe('findSlots on a single resource', () => {
  it('offers back-to-back slots across working hours', () => {
    const slots = findSlots([resource('r1')], query());
    expect(slots).toHaveLength(16);
    expect(slots[0]).toEqual({
      start: at('2026-05-18T09:00:00Z'),
      end: at('2026-05-18T09:30:00Z'),
      resourceIds: ['r1'],
    });
    expect(iso(slots[15]!.start)).toBe('2026-05-18T16:30:00Z');
    expect(iso(slots[15]!.end)).toBe('2026-05-18T17:00:00Z');
  });

  it('steps by interval_minutes independently of the duration', () => {
    const overlapping = findSlots([resource('r1')], query({ durationMinutes: 60, intervalMinutes: 15 }));
    expect(overlapping).toHaveLength(29);
    expect(starts(overlapping).slice(0, 3)).toEqual(['09:00', '09:15', '09:30']);
    expect(starts(overlapping).at(-1)).toBe('16:00');

    const spaced = findSlots([resource('r1')], query({ durationMinutes: 30, intervalMinutes: 60 }));
    expect(starts(spaced)).toEqual(['09:00', '10:00', '11:00', '12:00', '13:00', '14:00', '15:00', '16:00']);
  });

  it('widens confirmed bookings by the buffers before and after', () => {
    const input = resource('r1', { bufferBeforeMinutes: 15, bufferAfterMinutes: 30 }, [
      span('2026-05-18T11:00:00Z', '2026-05-18T12:00:00Z'),
    ]);
    expect(isoSpans(freeIntervals(input, MONDAY, LONG_AGO))).toEqual([
      ['2026-05-18T09:00:00Z', '2026-05-18T10:45:00Z'],
      ['2026-05-18T12:30:00Z', '2026-05-18T17:00:00Z'],
    ]);
    expect(starts(findSlots([input], query()))).toEqual([
      ...['09:00', '09:30', '10:00'],
      ...['12:30', '13:00', '13:30', '14:00', '14:30', '15:00', '15:30', '16:00', '16:30'],
    ]);
  });

  it('treats calendar busy time as busy without buffers', () => {
    const input = resource(
      'r1',
      { bufferBeforeMinutes: 60, bufferAfterMinutes: 60 },
      [],
      [span('2026-05-18T10:00:00Z', '2026-05-18T16:00:00Z')],
    );
    expect(isoSpans(freeIntervals(input, MONDAY, LONG_AGO))).toEqual([
      ['2026-05-18T09:00:00Z', '2026-05-18T10:00:00Z'],
      ['2026-05-18T16:00:00Z', '2026-05-18T17:00:00Z'],
    ]);
  });

  it('anchors the grid at the free interval, not at an odd window start', () => {
    const window = span('2026-05-18T09:07:00Z', '2026-05-18T11:00:00Z');
    expect(isoSpans(freeIntervals(resource('r1'), window, LONG_AGO))).toEqual([
      ['2026-05-18T09:07:00Z', '2026-05-18T11:00:00Z'],
    ]);
    expect(starts(findSlots([resource('r1')], query({ window })))).toEqual(['09:30', '10:00', '10:30']);
  });

  it('anchors the grid at the free interval, not at the end of minimum notice', () => {
    const input = resource('r1', { minimumNoticeMinutes: 143 });
    const now = at('2026-05-18T08:00:17Z');
    expect(isoSpans(freeIntervals(input, MONDAY, now))).toEqual([
      ['2026-05-18T10:23:17Z', '2026-05-18T17:00:00Z'],
    ]);
    expect(starts(findSlots([input], query({ now, intervalMinutes: 60 })))).toEqual([
      '11:00',
      '12:00',
      '13:00',
      '14:00',
      '15:00',
      '16:00',
    ]);
  });

  it('anchors round-the-clock working time at local midnight of the day before the window', () => {
    const allDay = resource('r1', {
      timeZone: 'Asia/Kathmandu',
      weekly: everyDay([['00:00', '24:00']]),
    });
    const slots = findSlots(
      [allDay],
      query({
        window: span('2026-05-18T09:07:00Z', '2026-05-18T12:00:00Z'),
        durationMinutes: 60,
        intervalMinutes: 60,
      }),
    );
    // Local midnight in Kathmandu is hh:15Z, so hourly slots land on local full hours.
    expect(slots.map((slot) => iso(slot.start))).toEqual(['2026-05-18T09:15:00Z', '2026-05-18T10:15:00Z']);
  });

  it('starts a new grid where busy time ends', () => {
    const input = resource('r1', {}, [], [span('2026-05-18T10:07:00Z', '2026-05-18T10:52:00Z')]);
    const slots = starts(findSlots([input], query()));
    expect(slots.slice(0, 5)).toEqual(['09:00', '09:30', '10:52', '11:22', '11:52']);
    expect(slots.at(-1)).toBe('16:22');
  });

  it('offers nothing beyond the booking horizon, allowing a slot that ends exactly on it', () => {
    const input = resource('r1', { bookingHorizonDays: 1 });
    const now = at('2026-05-17T12:00:00Z');
    const twoDays = span('2026-05-18T00:00:00Z', '2026-05-20T00:00:00Z');
    expect(isoSpans(freeIntervals(input, twoDays, now))).toEqual([
      ['2026-05-18T09:00:00Z', '2026-05-18T12:00:00Z'],
    ]);
    expect(starts(findSlots([input], query({ now, window: twoDays })))).toEqual([
      '09:00',
      '09:30',
      '10:00',
      '10:30',
      '11:00',
      '11:30',
    ]);
  });

  it('skips a day made free by an override of []', () => {
    const input = resource('r1', {
      overrides: [
        { localDate: '2026-05-18', intervals: [] },
        { localDate: '2026-05-19', intervals: [['12:00', '13:00']] },
      ],
    });
    const slots = findSlots([input], query({ window: span('2026-05-18T00:00:00Z', '2026-05-20T00:00:00Z') }));
    expect(slots.map((slot) => iso(slot.start))).toEqual(['2026-05-19T12:00:00Z', '2026-05-19T12:30:00Z']);
  });

  it('stops at maxSlots', () => {
    const week = span('2026-05-18T00:00:00Z', '2026-05-25T00:00:00Z');
    const capped = findSlots([resource('r1')], query({ window: week }), 5);
    expect(starts(capped)).toEqual(['09:00', '09:30', '10:00', '10:30', '11:00']);
    expect(findSlots([resource('r1')], query({ window: week }))).toHaveLength(80);
    expect(findSlots([resource('r1')], query({ window: week, mode: 'all' }), 3)).toHaveLength(3);
  });

  it('returns [] for no resources and rejects non-positive durations or intervals', () => {
    expect(findSlots([], query())).toEqual([]);
    expect(() => findSlots([resource('r1')], query({ durationMinutes: 0 }))).toThrow(RangeError);
    expect(() => findSlots([resource('r1')], query({ intervalMinutes: -15 }))).toThrow(RangeError);
  });
});

describe("findSlots mode 'any' (round-robin)", () => {
  it('lists every resource free for each slot, in input order', () => {
    const room1 = resource('room-1', {}, [span('2026-05-18T10:00:00Z', '2026-05-18T11:00:00Z')]);
    const room2 = resource('room-2', {}, [], [span('2026-05-18T13:00:00Z', '2026-05-18T14:00:00Z')]);
    const slots = findSlots(
      [room2, room1],
      query({
        window: span('2026-05-18T09:00:00Z', '2026-05-18T15:00:00Z'),
        durationMinutes: 60,
        intervalMinutes: 60,
      }),
    );
    expect(slots.map((slot) => [iso(slot.start), iso(slot.end), slot.resourceIds])).toEqual([
      ['2026-05-18T09:00:00Z', '2026-05-18T10:00:00Z', ['room-2', 'room-1']],
      ['2026-05-18T10:00:00Z', '2026-05-18T11:00:00Z', ['room-2']],
      ['2026-05-18T11:00:00Z', '2026-05-18T12:00:00Z', ['room-2', 'room-1']],
      ['2026-05-18T12:00:00Z', '2026-05-18T13:00:00Z', ['room-2', 'room-1']],
      ['2026-05-18T13:00:00Z', '2026-05-18T14:00:00Z', ['room-1']],
      ['2026-05-18T14:00:00Z', '2026-05-18T15:00:00Z', ['room-2', 'room-1']],
    ]);
  });

  it('interleaves resources whose grids are anchored differently, sorted by start', () => {
    const early = resource('a', {}, [span('2026-05-18T09:00:00Z', '2026-05-18T09:20:00Z')]);
    const late = resource('b');
    const slots = findSlots(
      [early, late],
      query({ window: span('2026-05-18T09:00:00Z', '2026-05-18T10:30:00Z') }),
    );
    expect(slots.map((slot) => [iso(slot.start).slice(11, 16), slot.resourceIds])).toEqual([
      ['09:00', ['b']],
      ['09:20', ['a']],
      ['09:30', ['b']],
      ['09:50', ['a']],
      ['10:00', ['b']],
    ]);
  });

  it('applies each resource’s own notice and horizon', () => {
    const now = at('2026-05-18T08:00:00Z');
    const slow = resource('slow', { minimumNoticeMinutes: 120 });
    const fast = resource('fast');
    const slots = findSlots(
      [slow, fast],
      query({
        now,
        window: span('2026-05-18T09:00:00Z', '2026-05-18T11:00:00Z'),
        intervalMinutes: 60,
        durationMinutes: 60,
      }),
    );
    expect(slots.map((slot) => [iso(slot.start).slice(11, 16), slot.resourceIds])).toEqual([
      ['09:00', ['fast']],
      ['10:00', ['slow', 'fast']],
    ]);
  });

  it('caps the merged output at maxSlots', () => {
    const slots = findSlots([resource('a'), resource('b')], query(), 3);
    expect(slots.map((slot) => [iso(slot.start).slice(11, 16), slot.resourceIds])).toEqual([
      ['09:00', ['a', 'b']],
      ['09:30', ['a', 'b']],
      ['10:00', ['a', 'b']],
    ]);
  });
});
