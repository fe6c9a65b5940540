import { afterAll, describe, expect, it } from 'vitest';
import {
  calendarBudget,
  expansionWindow,
  type CalendarBudget,
  type StoredObject,
} from '../../src/calendar/parsing/expand.js';
import {
  createParserPool,
  inlineParser,
  ParserThreadError,
  type CalendarParser,
} from '../../src/calendar/parsing/parser.js';
import type { RemoteEvent } from '../../src/calendar/port/provider.js';
import { IcsFeedProvider } from '../../src/calendar/providers/ics/ics-feed-provider.js';
import { GuardedHttp, OutboundGuard } from '../../src/integrations/index.js';
import { feedServer, icsCalendar, secondlyFeed } from '../support/hostile-feeds.js';

/*
 * The parser's worker threads (piscina) against the same work done on the calling thread: the same
 * answers, and a calendar that is too much for a thread fails its own read, never the process.
 */

const NOW = Date.UTC(2026, 11, 2, 12);
const window = expansionWindow(NOW);

/** Every part `expandInParts` hands back, in order, as one list. */
async function expandAll(
  parser: CalendarParser,
  events: RemoteEvent[],
  zone: string,
  budget: CalendarBudget,
) {
  const stored: StoredObject[] = [];
  for await (const part of parser.expandInParts(events, window, zone, budget)) stored.push(...part);
  return stored;
}

const weekly = (uid: string) => [
  `UID:${uid}`,
  'DTSTART;TZID=Europe/Berlin:20261201T090000',
  'DURATION:PT1H',
  'RRULE:FREQ=WEEKLY;BYDAY=MO,WE',
  `SUMMARY:${uid}`,
];

describe('the calendar parser pool', () => {
  const pool = createParserPool({ threads: 2 });
  afterAll(() => pool.close());

  it('reads and expands a feed exactly as the calling thread does, and spends the same budget', async () => {
    const text = icsCalendar([
      ...Array.from({ length: 40 }, (_, i) => weekly(`w${i}@example.com`)),
      ['UID:bad@example.com'],
    ]);
    const inline = inlineParser();
    const [pooled, local] = [await pool.readFeed(text, 1 << 20), await inline.readFeed(text, 1 << 20)];
    expect(pooled).toEqual(local);
    if (!pooled.ok) throw new Error(pooled.error);
    const budgets = [calendarBudget(), calendarBudget()] as const;
    const fromPool = await expandAll(pool, pooled.events, 'Europe/Berlin', budgets[0]);
    const fromInline = await expandAll(inline, pooled.events, 'Europe/Berlin', budgets[1]);
    expect(fromPool).toEqual(fromInline);
    expect(fromPool).toHaveLength(41);
    expect(fromPool.find((object) => object.remoteId === 'bad@example.com')?.result.ok).toBe(false);
    expect(budgets[0].occurrences).toBe(budgets[1].occurrences);
    expect(budgets[0].objects).toBe(budgets[1].objects);
    expect(budgets[0].occurrences).toBeLessThan(calendarBudget().occurrences);
  });

  it('hands a large calendar back in parts of a few thousand occurrences, within the whole budget', async () => {
    const read = await pool.readFeed(secondlyFeed(NOW), 10 << 20);
    if (!read.ok) throw new Error(read.error);
    const budget = calendarBudget();
    const sizes: number[] = [];
    let total = 0;
    for await (const part of pool.expandInParts(read.events, window, 'UTC', budget)) {
      const occurrences = part.reduce(
        (sum, object) => sum + (object.result.ok ? object.result.occurrences.length : 0),
        0,
      );
      sizes.push(occurrences);
      total += occurrences;
    }
    expect(total).toBe(budget.limits.occurrences);
    expect(budget.occurrencesCut).toBe(true);
    // No part holds more than one answer's worth plus the one series that crossed the mark.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(5_000 + 10_000);
    expect(sizes.length).toBeGreaterThan(10);
  });

  it('an object that needs more memory than a thread may use is kept unread with the reason, and the rest is read', async () => {
    const small = createParserPool({ threads: 1, memoryMb: 48 });
    try {
      // Just under the 10 MB an object may be: the parser keeps each of its 550,000 EXDATE values.
      const exdates = Array.from(
        { length: 110 },
        (_, line) =>
          `EXDATE:${Array.from({ length: 5_000 }, (_, i) => `2027${String((line % 12) + 1).padStart(2, '0')}01T${String(i % 24).padStart(2, '0')}0000Z`).join(',')}`,
      );
      const huge = icsCalendar([
        ['UID:huge@example.com', 'DTSTART:20261201T090000Z', 'RRULE:FREQ=HOURLY', ...exdates],
      ]);
      const plain = icsCalendar([weekly('fine@example.com')]);
      const budget = calendarBudget();
      const stored = await expandAll(
        small,
        [
          { remoteId: 'fine', etag: null, ics: plain },
          { remoteId: 'huge', etag: null, ics: huge },
        ],
        'UTC',
        budget,
      );
      expect(stored.map((object) => [object.remoteId, object.result.ok])).toEqual([
        ['fine', true],
        ['huge', false],
      ]);
      const failed = stored[1]!.result;
      expect(!failed.ok && failed.error).toContain('more than the 48 MB of memory one read may use');
      // The pool is still there for the next calendar.
      const after = await expandAll(small, [{ remoteId: 'again', etag: null, ics: plain }], 'UTC', budget);
      expect(after[0]?.result.ok).toBe(true);
    } finally {
      await small.close();
    }
  }, 60_000);

  it('a feed too large for a thread fails its sync with a clear reason, not the process', async () => {
    const small = createParserPool({ threads: 1, memoryMb: 48 });
    const feeds = feedServer();
    const base = await feeds.listen();
    try {
      const events = Array.from({ length: 60_000 }, (_, i) => weekly(`many-${i}@example.com`));
      feeds.bodies.set('/big.ics', icsCalendar(events));
      const provider = new IcsFeedProvider({
        http: new GuardedHttp(new OutboundGuard({ allow: ['127.0.0.1/32'] })),
        url: `${base}/big.ics`,
        maxBytes: 64 << 20,
        parser: small,
      });
      const failure = await provider.listChanges(null, new Map()).catch((error: unknown) => error);
      expect(failure).toMatchObject({ code: 'BAD_RESPONSE' });
      expect((failure as Error).message).toMatch(/could not be read: reading it needs more than the 48 MB/);
    } finally {
      await small.close();
      await feeds.close();
    }
  }, 60_000);

  it('a task that runs past its time stops with its thread', async () => {
    const slow = createParserPool({ threads: 1, taskTimeoutMs: 1 });
    try {
      const text = icsCalendar(Array.from({ length: 3000 }, (_, i) => weekly(`t${i}@example.com`)));
      const failure = await slow.readFeed(text, 1 << 24).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(ParserThreadError);
      expect(failure).toMatchObject({ reason: 'time' });
    } finally {
      await slow.close();
    }
  });
});
