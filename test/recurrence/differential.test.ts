import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { expandObject } from '../../src/ical/expand-object.js';
import { mulberry32 } from '../unit/support.js';

/**
 * Sched's expander against python-dateutil's rrule, on a few hundred generated rules (seeded, so the
 * same rules every run), compared instance by instance over a window. All rules go to one Python
 * process. `scripts/install-recurrence-oracle.sh` installs the oracle.
 *
 * Where the two legitimately differ, only that construct is set aside (dateutil_oracle.py):
 * - DTSTART that the rule does not match. RFC 5545 §3.8.5.3 makes DTSTART the first instance of the
 *   set whatever the rule says (and calls such a set undefined otherwise, §3.8.5.3 "SHOULD be
 *   synchronized"); dateutil yields DTSTART only when it matches. So for those rules DTSTART itself
 *   is dropped from Sched's list and the rule's own instances are compared.
 * - BYWEEKNO without BYDAY (or another day part). RFC 5545 §3.3.10 takes what a rule leaves out from
 *   DTSTART, so that is DTSTART's weekday in the named weeks; dateutil takes all seven days. The oracle
 *   is given BYDAY=<DTSTART's weekday>.
 * - BYSETPOS in the first week of a WEEKLY rule that starts mid-week. RFC 5545 §3.3.10 picks
 *   positions within the whole week; dateutil's first week begins at DTSTART, which shifts the
 *   positions. The oracle runs such a rule from its week's first day and drops what precedes DTSTART
 *   before COUNT applies.
 * - BYSETPOS with BYWEEKNO. A week that straddles the new year (ISO week 52 of 2027 ends on
 *   2028-01-02) is counted by Sched's engine in the year whose week it is, by dateutil in the calendar
 *   year of each day; RFC 5545 §3.3.10 numbers weeks but does not say which yearly set such days
 *   join, which only BYSETPOS can tell apart. Such rules are not generated; BYWEEKNO without
 *   BYSETPOS is.
 * - Two wall times naming one instant (a time in a spring-forward gap and the hour after it): a
 *   recurrence set holds the instant once (RFC 5545 §3.3.10, "a set"); the oracle drops the repeat.
 */

const PYTHON = '/usr/bin/python3';
const ORACLE = fileURLToPath(new URL('./dateutil_oracle.py', import.meta.url));
const WINDOW = { start: Date.parse('2024-01-01T00:00:00Z'), end: Date.parse('2030-01-01T00:00:00Z') };
const CASES = 400;
const SEED = 20_260_105;

type Kind = 'utc' | 'zoned' | 'floating';
type Case = { id: string; kind: Kind; zone: string; dtstart: string; rule: string };
type OracleResult = { instants: string[]; dtstart: string; dtstartIsInstance: boolean } | { error: string };

function oracleMissing(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} is not installed`;
  const probe = spawnSync(PYTHON, ['-c', 'import dateutil'], { encoding: 'utf8' });
  if (probe.status !== 0) return `python-dateutil is not importable by ${PYTHON} (${probe.stderr.trim()})`;
  return null;
}

const WEEKDAYS = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'];
const MONTH_MAX_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** Month ends, Feb 29, DST change days in New York and Berlin, and ordinary days. */
const START_DAYS = [
  '2024-01-31',
  '2024-02-29',
  '2024-04-30',
  '2024-03-10',
  '2024-03-31',
  '2024-11-03',
  '2024-10-27',
  '2024-12-31',
  '2025-02-28',
  '2025-03-09',
  '2025-05-31',
  '2025-08-31',
  '2024-06-12',
  '2025-01-01',
  '2025-07-17',
];
const START_TIMES = ['09:00:00', '00:30:00', '01:30:00', '02:30:00', '23:15:00', '12:00:00'];

class Generator {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.next() * list.length)]!;
  }
  /** 1..n distinct values of `list`, in random (so often unsorted) order. */
  some<T>(list: readonly T[], n: number): T[] {
    const out: T[] = [];
    const want = this.int(1, n);
    while (out.length < want) {
      const value = this.pick(list);
      if (!out.includes(value)) out.push(value);
    }
    return out;
  }
}

const gcdOf = (a: number, b: number): number => (b === 0 ? a : gcdOf(b, a % b));
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
const MONTH_DAYS = [...range(1, 31), -1, -2, -3, -7, -15, -28, -30, -31];

function compact(wall: string): string {
  return wall.replace(/[-:]/g, '');
}

/** A rule that can produce instances (dateutil searches up to year 9999 for one that cannot). */
function possible(parts: Map<string, string>): boolean {
  const days = parts.get('BYMONTHDAY')?.split(',').map(Number);
  if (days === undefined) return true;
  const months = parts.get('BYMONTH')?.split(',').map(Number) ?? range(1, 12);
  return months.some((m) => days.some((d) => Math.abs(d) <= MONTH_MAX_DAYS[m - 1]!));
}

function generateRule(g: Generator, kind: Kind, dtstart: string): string {
  for (;;) {
    const freq = g.pick([
      'YEARLY',
      'YEARLY',
      'MONTHLY',
      'MONTHLY',
      'WEEKLY',
      'WEEKLY',
      'DAILY',
      'DAILY',
      'HOURLY',
    ]);
    const parts = new Map<string, string>([['FREQ', freq]]);
    if (g.chance(0.4)) parts.set('INTERVAL', String(g.int(2, freq === 'HOURLY' ? 7 : 4)));
    const ordinals = freq === 'MONTHLY' || freq === 'YEARLY';
    if (g.chance({ YEARLY: 0.5, MONTHLY: 0.3, DAILY: 0.2, WEEKLY: 0.15, HOURLY: 0.1 }[freq]!)) {
      parts.set('BYMONTH', g.some(range(1, 12), 3).join(','));
    }
    let byDayOrdinal = false;
    if (g.chance({ YEARLY: 0.35, MONTHLY: 0.45, DAILY: 0.2, WEEKLY: 0.6, HOURLY: 0.15 }[freq]!)) {
      const days = g.some(WEEKDAYS, 3);
      byDayOrdinal = ordinals && g.chance(0.5);
      const ordinalsList =
        parts.has('BYMONTH') || freq === 'MONTHLY' ? [1, 2, 3, 4, -1, -2] : [1, 2, 10, 20, -1, -10];
      parts.set('BYDAY', days.map((d) => (byDayOrdinal ? `${g.pick(ordinalsList)}${d}` : d)).join(','));
    }
    const monthDays = freq !== 'WEEKLY' && !byDayOrdinal;
    const monthDayChance: Record<string, number> = { YEARLY: 0.35, MONTHLY: 0.45, DAILY: 0.25, HOURLY: 0.1 };
    if (monthDays && g.chance(monthDayChance[freq] ?? 0)) {
      parts.set('BYMONTHDAY', g.some(MONTH_DAYS, 3).join(','));
    }
    if (freq === 'YEARLY' && parts.size === 1 + (parts.has('INTERVAL') ? 1 : 0)) {
      const which = g.int(0, 4);
      if (which === 0)
        parts.set('BYYEARDAY', g.some([1, 60, 100, 200, 365, 366, -1, -60, -366], 3).join(','));
      else if (which === 1) {
        parts.set('BYWEEKNO', g.some([1, 2, 10, 20, 52, 53, -1, -2], 2).join(','));
        if (g.chance(0.6)) parts.set('BYDAY', g.some(WEEKDAYS, 2).join(','));
      }
    }
    if (freq === 'HOURLY' && g.chance(0.3)) {
      // Only hours the steps reach: dateutil refuses a rule that yields nothing.
      const step = gcdOf(Number(parts.get('INTERVAL') ?? 1), 24);
      const reachable = range(0, 23).filter((h) => (h - Number(dtstart.slice(11, 13)) + 24) % step === 0);
      parts.set('BYHOUR', g.some(reachable, 4).join(','));
    }
    // Not BYWEEKNO: see the note on weeks across the new year at the top.
    const expanding = ['BYDAY', 'BYMONTHDAY', 'BYYEARDAY'].filter((p) => parts.has(p));
    const setpos = !parts.has('BYWEEKNO') && freq !== 'HOURLY' && freq !== 'DAILY';
    if (setpos && expanding.length > 0 && g.chance(0.3)) {
      // A week has as many candidates as BYDAY names days; dateutil searches forever past that.
      const weekly = freq === 'WEEKLY' ? parts.get('BYDAY')!.split(',').length : 31;
      const positions = ['1', '-1', '2', '1,-1', '-2,3'].filter((p) =>
        p.split(',').some((n) => Math.abs(Number(n)) <= weekly),
      );
      if (positions.length > 0) parts.set('BYSETPOS', g.pick(positions));
    }
    if (g.chance(0.3)) parts.set('WKST', g.pick(WEEKDAYS));
    if (!possible(parts)) continue;
    // Rules with both day-of-month and weekday filters can be rare, so they stay short.
    const rare = parts.has('BYMONTHDAY') && parts.has('BYDAY');
    if (g.chance(0.6)) {
      parts.set('COUNT', String(g.int(1, freq === 'HOURLY' ? 60 : rare ? 4 : 25)));
    } else {
      const spanDays = freq === 'HOURLY' ? g.int(1, 5) : g.int(20, rare ? 800 : 1500);
      const until = new Date(Date.parse(`${dtstart}Z`) + spanDays * 86_400_000 + g.int(0, 86_399) * 1000);
      const text = compact(until.toISOString().slice(0, 19));
      parts.set('UNTIL', kind === 'floating' ? text : `${text}Z`);
    }
    return [...parts].map(([k, v]) => `${k}=${v}`).join(';');
  }
}

function generateCases(): Case[] {
  const g = new Generator(SEED);
  return Array.from({ length: CASES }, (_, index) => {
    const kind = g.pick<Kind>(['utc', 'zoned', 'zoned', 'floating']);
    const zone = { utc: 'UTC', zoned: 'America/New_York', floating: 'Europe/Berlin' }[kind];
    const dtstart = `${g.pick(START_DAYS)}T${g.pick(START_TIMES)}`;
    return { id: `c${index}`, kind, zone, dtstart, rule: generateRule(g, kind, dtstart) };
  });
}

function icsOf(c: Case): string {
  const start = {
    utc: `DTSTART:${compact(c.dtstart)}Z`,
    zoned: `DTSTART;TZID=${c.zone}:${compact(c.dtstart)}`,
    floating: `DTSTART:${compact(c.dtstart)}`,
  }[c.kind];
  return [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//sched//differential//EN',
    'BEGIN:VEVENT',
    `UID:${c.id}`,
    'DTSTAMP:20240101T000000Z',
    start,
    `RRULE:${c.rule}`,
    'END:VEVENT',
    'END:VCALENDAR',
    '',
  ].join('\r\n');
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

function runOracle(cases: Case[]): Record<string, OracleResult> {
  const input = JSON.stringify({
    cases: cases.map((c) => ({
      id: c.id,
      dtstart: c.dtstart,
      zone: c.zone,
      rule: c.rule,
      window: [iso(WINDOW.start), iso(WINDOW.end)],
    })),
  });
  const output = execFileSync(PYTHON, [ORACLE], { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return (JSON.parse(output) as { results: Record<string, OracleResult> }).results;
}

const missing = oracleMissing();

describe('recurrence expansion against python-dateutil', () => {
  if (missing !== null) {
    if (process.env.CI) {
      it('has its oracle in CI', () => {
        throw new Error(`${missing}: run scripts/install-recurrence-oracle.sh`);
      });
    } else {
      it.skip(`skipped: ${missing} (scripts/install-recurrence-oracle.sh installs it)`, () => {});
    }
    return;
  }

  it(`gives dateutil's instances for ${CASES} generated rules`, () => {
    const cases = generateCases();
    const oracle = runOracle(cases);
    const mismatches: unknown[] = [];
    let instances = 0;
    for (const c of cases) {
      const theirs = oracle[c.id];
      const result = expandObject(icsOf(c), WINDOW, { floatingZone: 'Europe/Berlin', timeBudgetMs: 5_000 });
      if (theirs === undefined || 'error' in theirs || !result.ok || result.truncated) {
        mismatches.push({ ...c, oracle: theirs, ours: result.ok ? 'truncated' : result.error });
        continue;
      }
      let ours = result.occurrences.map((o) => iso(o.startsAt));
      if (!theirs.dtstartIsInstance) ours = ours.filter((s) => s !== theirs.dtstart);
      instances += theirs.instants.length;
      if (JSON.stringify(ours) !== JSON.stringify(theirs.instants)) {
        mismatches.push({
          ...c,
          onlySched: ours.filter((s) => !theirs.instants.includes(s)),
          onlyDateutil: theirs.instants.filter((s) => !ours.includes(s)),
        });
      }
    }
    expect(mismatches).toEqual([]);
    // The comparison is only worth something if the rules produce instances.
    expect(instances).toBeGreaterThan(CASES * 5);
  }, 120_000);
});
