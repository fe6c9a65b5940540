import { describe, expect, it } from 'vitest';
import {
  clipIntervals,
  intersectIntervalLists,
  mergeIntervals,
  overlaps,
  subtractIntervals,
} from '../../src/domain/index.js';
import type { Interval } from '../../src/domain/index.js';
import { mulberry32 } from './support.js';

const iv = (start: number, end: number): Interval => ({ start, end });

describe('mergeIntervals', () => {
  it('returns [] for empty input', () => {
    expect(mergeIntervals([])).toEqual([]);
  });

  it('sorts unsorted input and merges overlapping, touching and nested intervals', () => {
    expect(mergeIntervals([iv(20, 30), iv(0, 10), iv(10, 15), iv(22, 25), iv(40, 50), iv(29, 35)])).toEqual([
      iv(0, 15),
      iv(20, 35),
      iv(40, 50),
    ]);
  });

  it('drops empty and inverted intervals', () => {
    expect(mergeIntervals([iv(5, 5), iv(9, 3), iv(1, 2)])).toEqual([iv(1, 2)]);
  });

  it('does not mutate or alias its input', () => {
    const input = [iv(10, 20), iv(0, 15)];
    const merged = mergeIntervals(input);
    merged[0]!.end = 99;
    expect(input).toEqual([iv(10, 20), iv(0, 15)]);
  });
});

describe('subtractIntervals', () => {
  it('cuts holes, trims edges and removes fully covered intervals', () => {
    expect(subtractIntervals([iv(0, 100), iv(200, 300)], [iv(10, 20), iv(90, 210), iv(250, 260)])).toEqual([
      iv(0, 10),
      iv(20, 90),
      iv(210, 250),
      iv(260, 300),
    ]);
  });

  it('keeps touching neighbours of the removed interval intact', () => {
    expect(subtractIntervals([iv(0, 10), iv(20, 30)], [iv(10, 20)])).toEqual([iv(0, 10), iv(20, 30)]);
  });

  it('accepts unsorted, overlapping inputs on both sides', () => {
    expect(
      subtractIntervals([iv(50, 60), iv(0, 30), iv(20, 40)], [iv(35, 55), iv(5, 10), iv(8, 12)]),
    ).toEqual([iv(0, 5), iv(12, 35), iv(55, 60)]);
  });

  it('handles one cut spanning several base intervals', () => {
    expect(subtractIntervals([iv(0, 10), iv(20, 30), iv(40, 50)], [iv(5, 45)])).toEqual([
      iv(0, 5),
      iv(45, 50),
    ]);
  });

  it('returns the merged base when nothing is subtracted and [] when the base is empty', () => {
    expect(subtractIntervals([iv(5, 10), iv(0, 6)], [])).toEqual([iv(0, 10)]);
    expect(subtractIntervals([], [iv(0, 10)])).toEqual([]);
  });
});

describe('intersectIntervalLists', () => {
  it('returns [] for no lists and for any empty list', () => {
    expect(intersectIntervalLists([])).toEqual([]);
    expect(intersectIntervalLists([[iv(0, 10)], []])).toEqual([]);
  });

  it('returns the merged list when given one list', () => {
    expect(intersectIntervalLists([[iv(5, 8), iv(0, 6)]])).toEqual([iv(0, 8)]);
  });

  it('keeps only time covered by every list', () => {
    expect(
      intersectIntervalLists([[iv(0, 100)], [iv(10, 30), iv(50, 70)], [iv(20, 60), iv(65, 90)]]),
    ).toEqual([iv(20, 30), iv(50, 60), iv(65, 70)]);
  });

  it('treats touching intervals from different lists as disjoint', () => {
    expect(intersectIntervalLists([[iv(0, 10)], [iv(10, 20)]])).toEqual([]);
  });

  it('is not fooled by overlaps inside a single list', () => {
    expect(intersectIntervalLists([[iv(0, 10), iv(5, 15)], [iv(100, 110)]])).toEqual([]);
  });
});

describe('clipIntervals and overlaps', () => {
  it('clips to the window and drops what falls outside', () => {
    expect(clipIntervals([iv(0, 10), iv(15, 25), iv(30, 40)], iv(5, 30))).toEqual([iv(5, 10), iv(15, 25)]);
  });

  it('treats intervals as half-open', () => {
    expect(overlaps(iv(0, 10), iv(10, 20))).toBe(false);
    expect(overlaps(iv(0, 10), iv(9, 20))).toBe(true);
    expect(overlaps(iv(0, 10), iv(2, 3))).toBe(true);
    expect(overlaps(iv(5, 5), iv(0, 10))).toBe(false);
  });
});

describe('interval algebra agrees with a minute bitmap on random inputs', () => {
  const SIZE = 200;

  function randomIntervals(random: () => number): Interval[] {
    const count = Math.floor(random() * 8);
    return Array.from({ length: count }, () => {
      const start = Math.floor(random() * SIZE);
      // Occasionally empty or inverted, to exercise the filtering.
      const end = start + Math.floor(random() * 40) - 3;
      return iv(start, Math.min(end, SIZE));
    });
  }

  function bitmap(intervals: readonly Interval[]): boolean[] {
    const bits = new Array<boolean>(SIZE).fill(false);
    for (const { start, end } of intervals) for (let m = start; m < end; m++) bits[m] = true;
    return bits;
  }

  function fromBitmap(bits: readonly boolean[]): Interval[] {
    const result: Interval[] = [];
    for (let m = 0; m < SIZE; m++) {
      if (!bits[m]) continue;
      const last = result[result.length - 1];
      if (last !== undefined && last.end === m) last.end = m + 1;
      else result.push(iv(m, m + 1));
    }
    return result;
  }

  it('for merge, subtract and intersect over 2000 seeded cases', () => {
    const random = mulberry32(20260518);
    for (let round = 0; round < 2000; round++) {
      const a = randomIntervals(random);
      const b = randomIntervals(random);
      const c = randomIntervals(random);
      const [ba, bb, bc] = [bitmap(a), bitmap(b), bitmap(c)];
      expect(mergeIntervals(a)).toEqual(fromBitmap(ba));
      expect(subtractIntervals(a, b)).toEqual(fromBitmap(ba.map((bit, m) => bit && !bb[m])));
      expect(intersectIntervalLists([a, b, c])).toEqual(
        fromBitmap(ba.map((bit, m) => bit && bb[m]! && bc[m]!)),
      );
    }
  });
});
