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

export function intersectIntervalLists(lists: readonly (readonly Interval[])[]): Interval[] {
  if (lists.length === 0) return [];
  // Each list is merged first so that "covered by every list" is exactly "counter equals list count".
  const events: { at: number; delta: 1 | -1 }[] = [];
  for (const list of lists) {
    const merged = mergeIntervals(list);
    if (merged.length === 0) return [];
    for (const interval of merged) {
      events.push({ at: interval.start, delta: 1 }, { at: interval.end, delta: -1 });
    }
  }
  // Ends sort before starts at the same instant so touching intervals don't register as overlapping.
  events.sort((a, b) => a.at - b.at || a.delta - b.delta);
  const target = lists.length;
  const result: Interval[] = [];
  let depth = 0;
  let openedAt = 0;
  for (const event of events) {
    depth += event.delta;
    if (event.delta === 1 && depth === target) {
      openedAt = event.at;
    } else if (event.delta === -1 && depth === target - 1 && event.at > openedAt) {
      result.push({ start: openedAt, end: event.at });
    }
  }
  return result;
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
