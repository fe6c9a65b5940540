import { describe, expect, it } from 'vitest';
import { mergeBusy } from '../../src/domain/index.js';
import { iso, span } from './support.js';

describe('mergeBusy', () => {
  it('merges each source on its own, clips to the window and sorts by start', () => {
    const blocks = mergeBusy(
      [
        span('2026-05-18T10:30:00Z', '2026-05-18T12:00:00Z'),
        span('2026-05-18T10:00:00Z', '2026-05-18T11:00:00Z'),
      ],
      [
        span('2026-05-18T11:30:00Z', '2026-05-18T13:00:00Z'),
        span('2026-05-18T08:00:00Z', '2026-05-18T09:00:00Z'),
      ],
      span('2026-05-18T08:30:00Z', '2026-05-18T12:45:00Z'),
    );
    expect(blocks.map((block) => [block.source, iso(block.start), iso(block.end)])).toEqual([
      ['calendar', '2026-05-18T08:30:00Z', '2026-05-18T09:00:00Z'],
      ['booking', '2026-05-18T10:00:00Z', '2026-05-18T12:00:00Z'],
      ['calendar', '2026-05-18T11:30:00Z', '2026-05-18T12:45:00Z'],
    ]);
  });

  it('merges touching intervals within a source but keeps overlapping blocks from different sources', () => {
    const hour = span('2026-05-18T10:00:00Z', '2026-05-18T11:00:00Z');
    const blocks = mergeBusy(
      [hour, span('2026-05-18T11:00:00Z', '2026-05-18T11:30:00Z')],
      [hour],
      span('2026-05-18T00:00:00Z', '2026-05-19T00:00:00Z'),
    );
    expect(blocks.map((block) => [block.source, iso(block.start), iso(block.end)])).toEqual([
      ['calendar', '2026-05-18T10:00:00Z', '2026-05-18T11:00:00Z'],
      ['booking', '2026-05-18T10:00:00Z', '2026-05-18T11:30:00Z'],
    ]);
  });

  it('returns [] when nothing is busy inside the window', () => {
    expect(
      mergeBusy(
        [],
        [span('2026-05-17T10:00:00Z', '2026-05-17T11:00:00Z')],
        span('2026-05-18T00:00:00Z', '2026-05-19T00:00:00Z'),
      ),
    ).toEqual([]);
  });
});
