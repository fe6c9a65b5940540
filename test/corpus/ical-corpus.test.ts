import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { expandObject } from '../../src/ical/expand-object.js';
import { splitCalendar } from '../../src/ical/split-calendar.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const corpus = path.resolve(repoRoot, '../shared/ical-corpus');
const WINDOW = { start: Date.parse('2000-01-01T00:00:00Z'), end: Date.parse('2031-01-01T00:00:00Z') };

type FileOutcome = {
  file: string;
  producer: string;
  ok: boolean;
  error: string | null;
  warnings: string[];
  objects: number;
  objectErrors: string[];
  occurrences: number;
  truncated: number;
  ms: number;
};

/** Messages that come from a crash inside the code rather than from a description of the input. */
const CRASH = /Cannot read prop|is not a function|is not iterable|undefined|Maximum call stack/;

function icsFiles(folder: string): string[] {
  return readdirSync(folder).flatMap((name) => {
    const full = path.join(folder, name);
    if (statSync(full).isDirectory()) return icsFiles(full);
    return name.endsWith('.ics') ? [full] : [];
  });
}

function importFile(full: string): FileOutcome {
  const relative = path.relative(corpus, full);
  const started = performance.now();
  const outcome: FileOutcome = {
    file: relative,
    producer: relative.split(path.sep)[0]!,
    ok: false,
    error: null,
    warnings: [],
    objects: 0,
    objectErrors: [],
    occurrences: 0,
    truncated: 0,
    ms: 0,
  };
  const split = splitCalendar(readFileSync(full, 'utf8'));
  if (!split.ok) {
    outcome.error = split.error;
  } else {
    outcome.ok = true;
    outcome.warnings = split.warnings;
    outcome.objects = split.parts.length;
    for (const part of split.parts) {
      const result = expandObject(part.ics, WINDOW, { floatingZone: 'Europe/Berlin' });
      if (!result.ok) {
        outcome.objectErrors.push(`${part.uid}: ${result.error}`);
        continue;
      }
      outcome.occurrences += result.occurrences.length;
      if (result.truncated) outcome.truncated++;
      outcome.warnings.push(...(result.warnings ?? []));
    }
  }
  outcome.ms = performance.now() - started;
  return outcome;
}

function printSummary(outcomes: FileOutcome[], totalMs: number): void {
  const rows = new Map<string, FileOutcome[]>();
  for (const o of outcomes) rows.set(o.producer, [...(rows.get(o.producer) ?? []), o]);
  const header = [
    'producer',
    'files',
    'imported',
    'refused',
    'objects',
    'object errors',
    'occurrences',
    'truncated series',
    'slowest file ms',
  ];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  const row = (name: string, list: FileOutcome[]) => {
    const sum = (f: (o: FileOutcome) => number) => list.reduce((n, o) => n + f(o), 0);
    const cells = [
      name,
      list.length,
      sum((o) => (o.ok ? 1 : 0)),
      sum((o) => (o.ok ? 0 : 1)),
      sum((o) => o.objects),
      sum((o) => o.objectErrors.length),
      sum((o) => o.occurrences),
      sum((o) => o.truncated),
      Math.round(Math.max(...list.map((o) => o.ms))),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  };
  for (const [name, list] of [...rows].sort()) row(name, list);
  row('**all**', outcomes);
  lines.push('', `walk: ${Math.round(totalMs)} ms`, '', 'refused files:');
  for (const o of outcomes.filter((x) => !x.ok)) lines.push(`- ${o.file}: ${o.error!.slice(0, 160)}`);
  console.log(lines.join('\n'));
}

describe('the shared iCalendar corpus', () => {
  if (!existsSync(corpus)) {
    if (process.env.CI) {
      it('is present in CI', () => {
        throw new Error(`the shared iCalendar corpus is missing at ${corpus}`);
      });
    } else {
      it.skip('the shared iCalendar corpus is not beside the repository', () => {});
    }
    return;
  }

  const outcomes = new Map<string, FileOutcome>();
  let totalMs = 0;

  beforeAll(() => {
    const started = performance.now();
    for (const file of icsFiles(corpus).sort()) {
      const outcome = importFile(file);
      outcomes.set(outcome.file, outcome);
    }
    totalMs = performance.now() - started;
    printSummary([...outcomes.values()], totalMs);
  }, 60_000);

  it('imports or refuses every file with a message naming the problem, well within the time limit', () => {
    expect(outcomes.size).toBeGreaterThan(300);
    for (const o of outcomes.values()) {
      if (!o.ok) {
        expect(o.error, o.file).toMatch(/\w{3,}/);
        expect(o.error, o.file).not.toMatch(CRASH);
      }
      for (const error of o.objectErrors) expect(error, o.file).not.toMatch(CRASH);
    }
    expect(totalMs).toBeLessThan(30_000);
  });

  it('imports the known-good files', () => {
    for (const file of [
      'node-ical/test_fixtures_Office-2012-owa.ics',
      'icaljs/samples_google_birthday.ics',
      'node-ical/test_fixtures_google-recurrence-order.ics',
      'node-ical/test_fixtures_ms_timezones.ics',
      'py-icalendar/src_icalendar_tests_calendars_issue_466_respect_unique_timezone.ics',
      'icaljs/samples_parserv2.ics',
    ]) {
      const o = outcomes.get(file);
      expect(o?.ok, file).toBe(true);
      expect(o!.occurrences, file).toBeGreaterThan(0);
      expect(o!.objectErrors, file).toEqual([]);
    }
    // An empty VCALENDAR behind a BOM: it must parse, and holds nothing.
    expect(outcomes.get('py-icalendar/src_icalendar_tests_calendars_bom_calendar.ics')).toMatchObject({
      ok: true,
      objects: 0,
    });
  });

  it('refuses or warns about the known-broken files', () => {
    const refused = (file: string, pattern: RegExp) => {
      const o = outcomes.get(file);
      expect(o?.ok, file).toBe(false);
      expect(o!.error, file).toMatch(pattern);
    };
    refused(
      'py-icalendar/src_icalendar_tests_calendars_issue_1081_invalid_rrule_freq.ics',
      /invalid frequency/,
    );
    refused('ical4j/src_test_resources_samples_invalid_bhav23-2.ics', /invalid line/);
    refused('py-icalendar/src_icalendar_tests_calendars_timezone_rdate.ics', /^line 53: invalid line/);
    refused('py-icalendar/src_icalendar_tests_calendars_fuzz_testcase_invalid_month.ics', /VCALENDAR/);
    const partly = outcomes.get('ical4j/src_test_resources_samples_invalid_phpicalendar_sample.ics');
    expect(partly?.ok).toBe(true);
    expect(partly!.warnings.some((w) => /VEVENT dropped/.test(w))).toBe(true);
    const hostile = outcomes.get('py-icalendar/src_icalendar_tests_calendars_invalid_duration.ics');
    expect(hostile?.objectErrors.join()).toMatch(/DURATION/);
  });
});
