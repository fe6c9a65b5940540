import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/*
 * The hostile calendars of the hardening work, as feeds a local server hands out, and what measures a
 * server while it reads them: used by the calendar tests that sync them (in the test app and in a real
 * `sched serve` process) and by the benchmark of how fast the API answers meanwhile.
 */

const DAY_MS = 86_400_000;

function stampOf(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');
}

/** A VCALENDAR of `events` (each the lines of one VEVENT, DTSTAMP added), `extra` lines before them. */
export function icsCalendar(events: string[][], extra: string[] = []): string {
  return [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//Example//Hostile//EN',
    ...extra,
    ...events.flatMap((lines) => ['BEGIN:VEVENT', 'DTSTAMP:20260501T000000Z', ...lines, 'END:VEVENT']),
    'END:VCALENDAR',
    '',
  ].join('\r\n');
}

/** About 9.5 MB: 22,400 single events with long descriptions, spread over the coming year. */
function hugeFeed(now: number): string {
  const text = 'Quarterly planning with the whole team, agenda attached. '.repeat(5);
  const events = Array.from({ length: 22_400 }, (_, i) => [
    `UID:huge-${i}@example.com`,
    `DTSTART:${stampOf(now + (i % 360) * DAY_MS + (i % 24) * 3_600_000)}`,
    'DURATION:PT30M',
    `SUMMARY:Meeting ${i}`,
    `DESCRIPTION:${text}`,
  ]);
  return icsCalendar(events);
}

/** 300 VTIMEZONEs, each with decades of transitions written out, and weekly series using them. */
function timeZonesFeed(now: number): string {
  const zones = Array.from({ length: 300 }, (_, z) => {
    const transitions = Array.from({ length: 40 }, (_, y) => [
      'BEGIN:DAYLIGHT',
      `DTSTART:${1980 + y}0329T020000`,
      'TZOFFSETFROM:+0100',
      'TZOFFSETTO:+0200',
      'END:DAYLIGHT',
      'BEGIN:STANDARD',
      `DTSTART:${1980 + y}1025T030000`,
      'TZOFFSETFROM:+0200',
      'TZOFFSETTO:+0100',
      'END:STANDARD',
    ]).flat();
    return ['BEGIN:VTIMEZONE', `TZID:Custom/Zone-${z}`, ...transitions, 'END:VTIMEZONE'];
  });
  const start = stampOf(now).slice(0, 15);
  const events = Array.from({ length: 1500 }, (_, i) => [
    `UID:zoned-${i}@example.com`,
    `DTSTART;TZID=Custom/Zone-${i % 300}:${start}`,
    'DURATION:PT1H',
    'RRULE:FREQ=WEEKLY',
    `SUMMARY:Zoned ${i}`,
  ]);
  return icsCalendar(events, zones.flat());
}

/** One series every five minutes with 100,000 EXDATEs. */
function exdatesFeed(now: number): string {
  const first = Math.ceil(now / 300_000) * 300_000;
  const exdates = Array.from(
    { length: 100_000 },
    (_, i) => `EXDATE:${stampOf(first + (2 * i + 1) * 300_000)}`,
  );
  return icsCalendar([
    [
      'UID:exdates@example.com',
      `DTSTART:${stampOf(first)}`,
      'DURATION:PT5M',
      'RRULE:FREQ=MINUTELY;INTERVAL=5',
      ...exdates,
      'SUMMARY:Every five minutes',
    ],
  ]);
}

/** 3,000 series of one occurrence a second from the next full hour: 10,000 each in the stored span. */
export function secondlyFeed(now: number): string {
  const start = stampOf(Math.ceil(now / 3_600_000) * 3_600_000);
  return icsCalendar(
    Array.from({ length: 3000 }, (_, i) => [
      `UID:tick-${i}@example.com`,
      `DTSTART:${start}`,
      'DURATION:PT1S',
      'RRULE:FREQ=SECONDLY',
    ]),
  );
}

export const HOSTILE_FEEDS: { name: string; make: (now: number) => string }[] = [
  { name: '9.5 MB feed', make: hugeFeed },
  { name: '300 VTIMEZONEs', make: timeZonesFeed },
  { name: '100,000 EXDATEs', make: exdatesFeed },
  { name: '3,000 FREQ=SECONDLY series', make: secondlyFeed },
];

export function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

/** Reads a figure every 20 ms until stopped, keeping the largest (a process's RSS, say). */
export function sampleMax(read: () => Promise<number> | number) {
  let running = true;
  let max = 0;
  let count = 0;
  const done = (async () => {
    while (running) {
      max = Math.max(max, await read());
      count++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return { max, count };
    },
  };
}

/** Asks `probe` again as soon as it answered (and 10 ms passed), timing each answer. */
export function watchLatency(probe: () => Promise<void>) {
  let running = true;
  const took: number[] = [];
  const done = (async () => {
    while (running) {
      const started = performance.now();
      await probe();
      took.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      const sorted = [...took].sort((x, y) => x - y);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
      return { slowest: sorted.at(-1) ?? 0, p99: at(0.99), median: at(0.5), count: sorted.length };
    },
  };
}

export type Latencies = Awaited<ReturnType<ReturnType<typeof watchLatency>['stop']>>;

/**
 * While `work` runs: how fast a server answers /healthz and `apiRead` (each asked again as soon as it
 * answered), and its largest RSS. A /healthz other than 200 fails the measurement.
 */
export async function measureWhile(
  server: { url: string; pid: number },
  apiRead: () => Promise<void>,
  work: () => Promise<void>,
): Promise<{ healthz: Latencies; api: Latencies; rss: number }> {
  const healthz = watchLatency(async () => {
    const response = await fetch(`${server.url}/healthz`);
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`/healthz answered ${response.status}`);
  });
  const api = watchLatency(apiRead);
  const memory = sampleMax(() => rssOf(server.pid));
  const stop = () => Promise.all([healthz.stop(), api.stop(), memory.stop()]);
  try {
    await work();
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  const [healthzTimes, apiTimes, rss] = await stop();
  return { healthz: healthzTimes, api: apiTimes, rss: rss.max };
}

/** A feed server on 127.0.0.1 serving whatever body each path is given. */
export function feedServer() {
  const bodies = new Map<string, string>();
  const server = http.createServer((request, response) => {
    const body = bodies.get(request.url ?? '');
    if (body === undefined) return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'text/calendar; charset=utf-8' }).end(body);
  });
  return {
    bodies,
    server,
    /** Listens on a free port; the base URL of the feeds. */
    async listen(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
