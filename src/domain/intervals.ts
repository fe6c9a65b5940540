/** Half-open interval [start, end) of epoch milliseconds. */
export type Interval = { start: number; end: number };

function byStartThenEnd(a: Interval, b: Interval): number {
  return a.start - b.start || a.end - b.end;
}

export function overlaps(a: Interval, b: Interval): boolean {
  return a.start < b.end && b.start < a.end && a.start < a.end && b.start < b.end;
}

export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter((i) => i.end > i.start).sort(byStartThenEnd);
  const merged: Interval[] = [];
  let current: Interval | undefined;
  for (const interval of sorted) {
    // Touching intervals are merged too: [a,b) and [b,c) describe one continuous stretch.
    if (current !== undefined && interval.start <= current.end) {
      if (interval.end > current.end) current.end = interval.end;
      continue;
    }
    current = { start: interval.start, end: interval.end };
    merged.push(current);
  }
  return merged;
}

export function subtractIntervals(base: readonly Interval[], minus: readonly Interval[]): Interval[] {
  const from = mergeIntervals(base);
  const cut = mergeIntervals(minus);
  const result: Interval[] = [];
  let j = 0;
  for (const interval of from) {
    let cursor = interval.start;
    // Cut intervals ending before this base interval can't affect any later one either (both lists sorted).
    while (j < cut.length && cut[j]!.end <= cursor) j++;
    let k = j;
    while (k < cut.length && cut[k]!.start < interval.end) {
      const c = cut[k]!;
      if (c.start > cursor) result.push({ start: cursor, end: c.start });
      if (c.end > cursor) cursor = c.end;
      if (cursor >= interval.end) break;
      k++;
    }
    if (cursor < interval.end) result.push({ start: cursor, end: interval.end });
    // The last cut examined may extend into the next base interval, so resume from it rather than past it.
    j = k;
  }
  return result;
}

/** Two merged, sorted lists walked once side by side. */
function intersectTwo(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const result: Interval[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const start = Math.max(x.start, y.start);
    const end = Math.min(x.end, y.end);
    if (end > start) result.push({ start, end });
    if (x.end < y.end) i++;
    else j++;
  }
  return result;
}

/**
 * Time covered by every list. Folding the merged lists two at a time is linear in their sizes and
 * stops as soon as nothing is common, which in a collective search of busy people comes early.
 */
export function intersectIntervalLists(lists: readonly (readonly Interval[])[]): Interval[] {
  if (lists.length === 0) return [];
  let common = mergeIntervals(lists[0]!);
  for (let k = 1; k < lists.length && common.length > 0; k++) {
    common = intersectTwo(common, mergeIntervals(lists[k]!));
  }
  return common;
}

export function clipIntervals(intervals: readonly Interval[], window: Interval): Interval[] {
  const result: Interval[] = [];
  for (const interval of intervals) {
    const start = Math.max(interval.start, window.start);
    const end = Math.min(interval.end, window.end);
    if (end > start) result.push({ start, end });
  }
  return result;
}
