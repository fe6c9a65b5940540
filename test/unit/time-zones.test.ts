import { describe, expect, it } from 'vitest';
import {
  canonicalTimeZone,
  formatInstant,
  instantFormatter,
  isValidLocalDate,
  isValidTimeZone,
  isValidWallTime,
  parseInstant,
} from '../../src/domain/index.js';
import { at } from './support.js';

describe('isValidTimeZone', () => {
  it('accepts IANA zone names and UTC', () => {
    for (const zone of [
      'Europe/Berlin',
      'America/New_York',
      'Asia/Kathmandu',
      'UTC',
      'Etc/UTC',
      'Etc/GMT+5',
    ]) {
      expect(isValidTimeZone(zone), zone).toBe(true);
    }
  });

  it('rejects offsets and unknown names', () => {
    for (const zone of ['+02:00', '-0500', 'Mars/Olympus_Mons', '']) {
      expect(isValidTimeZone(zone), zone).toBe(false);
    }
  });

  it('accepts the aliases IANA keeps and other spellings, which are stored by their canonical name', () => {
    for (const [zone, canonical] of [
      ['US/Eastern', 'America/New_York'],
      ['america/new_york', 'America/New_York'],
      ['GMT', 'UTC'],
      ['utc', 'UTC'],
    ] as const) {
      expect(isValidTimeZone(zone), zone).toBe(true);
      expect(canonicalTimeZone(zone), zone).toBe(canonical);
    }
  });

  it('answers the same on repeated (cached) calls', () => {
    expect(isValidTimeZone('Asia/Kolkata')).toBe(true);
    expect(isValidTimeZone('Asia/Kolkata')).toBe(true);
    expect(isValidTimeZone('Asia/Nowhere')).toBe(false);
    expect(isValidTimeZone('Asia/Nowhere')).toBe(false);
  });
});

describe('formatInstant', () => {
  it('prints UTC with Z and no milliseconds when they are zero', () => {
    expect(formatInstant(at('2026-05-18T10:00:00Z'))).toBe('2026-05-18T10:00:00Z');
  });

  it('prints milliseconds only when non-zero', () => {
    expect(formatInstant(at('2026-05-18T10:00:00.120Z'))).toBe('2026-05-18T10:00:00.120Z');
    expect(formatInstant(-1)).toBe('1969-12-31T23:59:59.999Z');
    expect(formatInstant(at('2026-05-18T10:00:00.007Z'), 'Europe/Berlin')).toBe(
      '2026-05-18T12:00:00.007+02:00',
    );
  });

  it('prints local time with the numeric offset of the given zone', () => {
    const instant = at('2026-05-18T10:00:00Z');
    expect(formatInstant(instant, 'Europe/Berlin')).toBe('2026-05-18T12:00:00+02:00');
    expect(formatInstant(instant, 'America/New_York')).toBe('2026-05-18T06:00:00-04:00');
    expect(formatInstant(instant, 'Asia/Kathmandu')).toBe('2026-05-18T15:45:00+05:45');
    expect(formatInstant(instant, 'UTC')).toBe('2026-05-18T10:00:00+00:00');
  });

  it('prints +00:00 for London in winter and +01:00 in summer', () => {
    expect(formatInstant(at('2026-01-18T10:00:00Z'), 'Europe/London')).toBe('2026-01-18T10:00:00+00:00');
    expect(formatInstant(at('2026-07-18T10:00:00Z'), 'Europe/London')).toBe('2026-07-18T11:00:00+01:00');
  });
});

describe('parseInstant', () => {
  it('accepts Z and numeric offsets', () => {
    expect(parseInstant('2026-05-18T10:00:00Z')).toBe(at('2026-05-18T10:00:00Z'));
    expect(parseInstant('2026-05-18T12:00:00+02:00')).toBe(at('2026-05-18T10:00:00Z'));
    expect(parseInstant('2026-05-18T04:15:00-05:45')).toBe(at('2026-05-18T10:00:00Z'));
    expect(parseInstant('2026-01-01T01:00:00+02:00')).toBe(at('2025-12-31T23:00:00Z'));
  });

  it('accepts fractional seconds, truncating below a millisecond', () => {
    expect(parseInstant('2026-05-18T10:00:00.5Z')).toBe(at('2026-05-18T10:00:00.500Z'));
    expect(parseInstant('2026-05-18T10:00:00.123456789+00:00')).toBe(at('2026-05-18T10:00:00.123Z'));
  });

  it('rejects instants without an offset', () => {
    expect(parseInstant('2026-05-18T10:00:00')).toBeNull();
    expect(parseInstant('2026-05-18')).toBeNull();
  });

  it('rejects dates and times that do not exist', () => {
    expect(parseInstant('2026-02-30T10:00:00Z')).toBeNull();
    expect(parseInstant('2026-02-29T10:00:00Z')).toBeNull();
    expect(parseInstant('2026-13-01T10:00:00Z')).toBeNull();
    expect(parseInstant('2026-05-18T24:00:00Z')).toBeNull();
    expect(parseInstant('2026-05-18T10:60:00Z')).toBeNull();
    expect(parseInstant('2026-05-18T10:00:00+24:00')).toBeNull();
  });

  it('accepts 29 February in a leap year', () => {
    expect(parseInstant('2024-02-29T00:00:00Z')).toBe(at('2024-02-29T00:00:00Z'));
  });

  it('rejects garbage and near-misses of the format', () => {
    for (const text of [
      'tomorrow',
      '',
      '2026-05-18 10:00:00Z',
      '2026-05-18t10:00:00z',
      '2026-05-18T10:00Z',
      '2026-05-18T10:00:00+0200',
      '2026-05-18T10:00:00.Z',
    ]) {
      expect(parseInstant(text), text).toBeNull();
    }
  });

  it('round-trips with formatInstant', () => {
    for (const text of ['2026-03-08T07:00:00Z', '1999-12-31T23:59:59.999Z']) {
      expect(formatInstant(parseInstant(text)!)).toBe(text);
    }
    expect(parseInstant(formatInstant(at('2026-10-25T00:30:00Z'), 'Europe/Berlin'))).toBe(
      at('2026-10-25T00:30:00Z'),
    );
  });
});

describe('isValidLocalDate', () => {
  it('accepts real calendar dates including leap days', () => {
    for (const date of ['2026-02-28', '2024-02-29', '2000-02-29', '2026-12-31'])
      expect(isValidLocalDate(date), date).toBe(true);
  });

  it('rejects impossible dates and other formats', () => {
    for (const date of [
      '2026-02-29',
      '2100-02-29',
      '2026-04-31',
      '2026-13-01',
      '2026-00-10',
      '2026-2-28',
      '20260228',
      '2026-02-28T00:00',
    ]) {
      expect(isValidLocalDate(date), date).toBe(false);
    }
  });
});

describe('isValidWallTime', () => {
  it('accepts 00:00 to 23:59 and 24:00 as the end of the day', () => {
    for (const time of ['00:00', '09:30', '23:59', '24:00']) expect(isValidWallTime(time), time).toBe(true);
  });

  it('rejects out-of-range and malformed times', () => {
    for (const time of ['24:01', '25:00', '12:60', '7:00', '07:00:00', '', 'noon'])
      expect(isValidWallTime(time), time).toBe(false);
  });
});

describe('instantFormatter', () => {
  it('formats every instant of a range as formatInstant does, across offset changes', () => {
    const cases: [string, string, string][] = [
      ['America/New_York', '2026-03-01T00:00:00Z', '2026-11-15T00:00:00Z'],
      ['Australia/Lord_Howe', '2026-03-20T00:00:00Z', '2026-10-20T00:00:00Z'],
      ['Asia/Kathmandu', '2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z'],
      ['America/St_Johns', '2026-03-01T00:00:00Z', '2026-04-01T00:00:00Z'],
      ['UTC', '2026-01-01T00:00:00Z', '2026-01-10T00:00:00Z'],
      // +00:19:32 until 1937: not whole minutes, answered by Temporal.
      ['Europe/Amsterdam', '1935-01-01T00:00:00Z', '1938-01-01T00:00:00Z'],
    ];
    for (const [zone, from, to] of cases) {
      const range = { start: Date.parse(from), end: Date.parse(to) };
      const format = instantFormatter(zone, range);
      const step = Math.floor((range.end - range.start) / 3000);
      for (let at = range.start; at <= range.end; at += step) {
        expect(format(at), `${zone} ${at}`).toBe(formatInstant(at, zone));
        expect(format(at + 250), `${zone} ${at + 250}`).toBe(formatInstant(at + 250, zone));
      }
    }
    expect(instantFormatter(undefined, { start: 0, end: 1 })(Date.parse('2026-01-01T10:00:00Z'))).toBe(
      '2026-01-01T10:00:00Z',
    );
  });
});
