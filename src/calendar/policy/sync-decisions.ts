/**
 * What to do when the provider's copy of a booking's event differs from the booking. Pure: the sync
 * engine gathers both versions and carries out the answer.
 */

export type ConflictPolicy = 'sched_wins' | 'provider_wins' | 'last_writer_wins' | 'manual';

export type SchedVersion = {
  status: 'confirmed' | 'cancelled';
  startsAt: number;
  endsAt: number;
  /** When the booking last changed, epoch ms. */
  updatedAt: number;
};

export type ProviderVersion =
  | { kind: 'deleted'; detectedAt: number }
  | {
      kind: 'event';
      status: 'confirmed' | 'tentative' | 'cancelled';
      startsAt: number;
      endsAt: number;
      /** LAST-MODIFIED at the provider; null when it gives none. */
      modifiedAt: number | null;
      /** When we saw it, used when the provider gives no modification time. */
      detectedAt: number;
    };

export type SyncDecision =
  /** Both say the same thing: nothing to do but remember the provider's version tag. */
  | { action: 'in_sync' }
  /** Write the booking to the provider again (recreating the event if it was deleted). */
  | { action: 'push_sched' }
  /** Change the booking to match the provider: move it, or cancel it. */
  | { action: 'apply_provider'; change: 'cancel' | 'move' }
  /** Keep both as they are and ask a person. */
  | { action: 'open_conflict' };

export function sameAsBooking(sched: SchedVersion, provider: ProviderVersion): boolean {
  if (provider.kind === 'deleted') return sched.status === 'cancelled';
  if (sched.status === 'cancelled') return provider.status === 'cancelled';
  return (
    provider.status !== 'cancelled' &&
    provider.startsAt === sched.startsAt &&
    provider.endsAt === sched.endsAt
  );
}

/** What the provider's version asks of the booking when it is applied. */
export function providerChange(provider: ProviderVersion): 'cancel' | 'move' {
  return provider.kind === 'deleted' || provider.status === 'cancelled' ? 'cancel' : 'move';
}

export function decideSync(
  policy: ConflictPolicy,
  sched: SchedVersion,
  provider: ProviderVersion,
): SyncDecision {
  if (sameAsBooking(sched, provider)) return { action: 'in_sync' };
  // A cancelled booking stays cancelled: its event is removed, never revived from the provider.
  if (sched.status === 'cancelled') return { action: 'push_sched' };
  switch (policy) {
    case 'sched_wins':
      return { action: 'push_sched' };
    case 'provider_wins':
      return { action: 'apply_provider', change: providerChange(provider) };
    case 'manual':
      return { action: 'open_conflict' };
    case 'last_writer_wins': {
      const providerAt =
        provider.kind === 'deleted' ? provider.detectedAt : (provider.modifiedAt ?? provider.detectedAt);
      return providerAt > sched.updatedAt
        ? { action: 'apply_provider', change: providerChange(provider) }
        : { action: 'push_sched' };
    }
  }
}

/**
 * Delay before the next attempt after `failures` consecutive failed syncs: 30 s doubling up to one
 * hour, spread ±20% so connections that failed together do not retry together.
 */
export function syncRetryDelayMs(failures: number, random: () => number = Math.random): number {
  const base = Math.min(30_000 * 2 ** Math.max(0, failures - 1), 3_600_000);
  return Math.round(base * (0.8 + 0.4 * random()));
}
