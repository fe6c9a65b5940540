import { Temporal } from 'temporal-polyfill';
import { describe, expect, it } from 'vitest';
import { canonicalTimeZone } from '../../src/domain/index.js';

/** The offset a zone has at an instant, to show that an alias and its canonical name agree. */
function offsetAt(zone: string, iso: string): string {
  return Temporal.Instant.from(iso).toZonedDateTimeISO(zone).offset;
}

describe('canonicalTimeZone', () => {
  it('resolves the aliases IANA keeps to the zone Intl names for them', () => {
    for (const alias of ['US/Eastern', 'EST5EDT', 'CET', 'GMT', 'Etc/UTC', 'us/eastern']) {
      const canonical = canonicalTimeZone(alias);
      expect(canonical, alias).not.toBeNull();
      expect(canonical, alias).toBe(
        new Intl.DateTimeFormat('en-US', { timeZone: alias }).resolvedOptions().timeZone,
      );
      for (const iso of ['2026-01-15T12:00:00Z', '2026-07-15T12:00:00Z']) {
        expect(offsetAt(canonical!, iso), `${alias} at ${iso}`).toBe(offsetAt(alias, iso));
      }
    }
    expect(canonicalTimeZone('US/Eastern')).toBe('America/New_York');
    expect(canonicalTimeZone('GMT')).toBe('UTC');
  });

  it('keeps Area/Location names and fixed Etc offsets as they are, in their canonical spelling', () => {
    expect(canonicalTimeZone('Asia/Kolkata')).toBe('Asia/Kolkata');
    expect(canonicalTimeZone('Europe/Kyiv')).toBe('Europe/Kyiv');
    expect(canonicalTimeZone('america/new_york')).toBe('America/New_York');
    expect(canonicalTimeZone('Etc/GMT+5')).toBe('Etc/GMT+5');
    expect(canonicalTimeZone('UTC')).toBe('UTC');
    // The cached answer is the same as the first.
    expect(canonicalTimeZone('Asia/Kolkata')).toBe('Asia/Kolkata');
  });

  it('refuses offsets and names that are no zone', () => {
    for (const zone of ['+02:00', '-05:00', 'Asia/Nowhere', 'Mars/Olympus', '', 'Europe/Berlin\u0000']) {
      expect(canonicalTimeZone(zone), JSON.stringify(zone)).toBeNull();
    }
  });
});
