import { describe, expect, it } from 'vitest';
import {
  decideSync,
  syncRetryDelayMs,
  type ConflictPolicy,
  type ProviderVersion,
  type SchedVersion,
} from '../../src/calendar/policy/sync-decisions.js';

const hour = 3_600_000;
const booking: SchedVersion = {
  status: 'confirmed',
  startsAt: 10 * hour,
  endsAt: 11 * hour,
  updatedAt: 1000,
};
type EventVersion = Extract<ProviderVersion, { kind: 'event' }>;
const moved = (modifiedAt: number | null): EventVersion => ({
  kind: 'event',
  status: 'confirmed',
  startsAt: 12 * hour,
  endsAt: 13 * hour,
  modifiedAt,
  detectedAt: 5000,
});
const deleted: ProviderVersion = { kind: 'deleted', detectedAt: 5000 };
const same: EventVersion = { ...moved(2000), startsAt: booking.startsAt, endsAt: booking.endsAt };
const cancelledThere: EventVersion = { ...same, status: 'cancelled' };

describe('decideSync', () => {
  const table: [ConflictPolicy, ProviderVersion, ReturnType<typeof decideSync>][] = [
    ['sched_wins', same, { action: 'in_sync' }],
    ['provider_wins', same, { action: 'in_sync' }],
    ['sched_wins', moved(2000), { action: 'push_sched' }],
    ['sched_wins', deleted, { action: 'push_sched' }],
    ['provider_wins', moved(2000), { action: 'apply_provider', change: 'move' }],
    ['provider_wins', deleted, { action: 'apply_provider', change: 'cancel' }],
    ['provider_wins', cancelledThere, { action: 'apply_provider', change: 'cancel' }],
    ['manual', moved(2000), { action: 'open_conflict' }],
    ['manual', deleted, { action: 'open_conflict' }],
    ['last_writer_wins', moved(2000), { action: 'apply_provider', change: 'move' }],
    ['last_writer_wins', moved(500), { action: 'push_sched' }],
    ['last_writer_wins', moved(null), { action: 'apply_provider', change: 'move' }],
    ['last_writer_wins', deleted, { action: 'apply_provider', change: 'cancel' }],
  ];
  for (const [policy, provider, expected] of table) {
    const label = provider.kind === 'deleted' ? 'deleted' : `${provider.status} ${provider.startsAt / hour}h`;
    it(`${policy} with the provider's event ${label} → ${expected.action}`, () => {
      expect(decideSync(policy, booking, provider)).toEqual(expected);
    });
  }

  it('never revives a cancelled booking from the provider, whatever the policy', () => {
    const cancelled = { ...booking, status: 'cancelled' as const };
    for (const policy of ['sched_wins', 'provider_wins', 'last_writer_wins', 'manual'] as const) {
      expect(decideSync(policy, cancelled, moved(9999))).toEqual({ action: 'push_sched' });
      expect(decideSync(policy, cancelled, deleted)).toEqual({ action: 'in_sync' });
    }
  });
});

describe('syncRetryDelayMs', () => {
  it('doubles from 30 s up to an hour, within ±20%', () => {
    expect(syncRetryDelayMs(1, () => 0.5)).toBe(30_000);
    expect(syncRetryDelayMs(2, () => 0.5)).toBe(60_000);
    expect(syncRetryDelayMs(30, () => 0.5)).toBe(3_600_000);
    expect(syncRetryDelayMs(1, () => 0)).toBe(24_000);
    expect(syncRetryDelayMs(1, () => 0.999999)).toBeLessThanOrEqual(36_000);
  });
});
