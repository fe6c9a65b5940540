import type { GoogleApiError } from './errors.js';
import { errors } from './errors.js';

export const FAULT_KINDS = [
  'rateLimit403',
  'userRateLimit403',
  'rateLimit429',
  'quotaExceeded403',
  'backendError500',
  'unavailable503',
  'authError401',
  'insufficientPermissions403',
  'hang',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type FaultRule = {
  kind: FaultKind;
  /** How many calls fail; with a probability, the most that may fail. Neither given: one. */
  count?: number;
  /** Each matching call fails with this probability, drawn from a generator seeded by `seed`. */
  probability?: number;
  seed?: number;
  /** Retry-After (seconds) on 429 and 403 rate limits; absent sends none. */
  retryAfterSeconds?: number;
  /** Only calls with this method (GET, POST, ...). */
  method?: string;
  /** Only calls whose path below /calendar/v3 contains this text. */
  path?: string;
};

type ActiveRule = FaultRule & { remaining: number; random: () => number };

/** mulberry32: small, seedable, good enough to make fault sequences reproducible. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function validateRule(input: unknown): FaultRule {
  const rule = (input ?? {}) as FaultRule;
  if (!FAULT_KINDS.includes(rule.kind)) throw new Error(`kind must be one of ${FAULT_KINDS.join(', ')}`);
  if (rule.probability !== undefined && !(rule.probability >= 0 && rule.probability <= 1)) {
    throw new Error('probability must be within [0, 1]');
  }
  return rule;
}

/** The API failures to inject; rules are tried in the order they were added. */
export class Faults {
  #rules: ActiveRule[] = [];

  add(rule: FaultRule): void {
    const remaining = rule.count ?? (rule.probability === undefined ? 1 : Number.POSITIVE_INFINITY);
    this.#rules.push({ ...rule, remaining, random: generator(rule.seed ?? 1) });
  }

  clear(): void {
    this.#rules = [];
  }

  get pending(): number {
    return this.#rules.filter((r) => r.remaining > 0).length;
  }

  /** The fault this call gets, if any. */
  take(method: string, path: string): FaultRule | null {
    for (const rule of this.#rules) {
      if (rule.remaining <= 0) continue;
      if (rule.method !== undefined && rule.method.toUpperCase() !== method) continue;
      if (rule.path !== undefined && !path.includes(rule.path)) continue;
      if (rule.probability !== undefined && rule.random() >= rule.probability) continue;
      rule.remaining--;
      return rule;
    }
    return null;
  }
}

export function faultError(rule: FaultRule): GoogleApiError | 'hang' {
  switch (rule.kind) {
    case 'rateLimit403':
      return errors.rateLimit(403, rule.retryAfterSeconds);
    case 'rateLimit429':
      return errors.rateLimit(429, rule.retryAfterSeconds);
    case 'userRateLimit403':
      return errors.userRateLimit();
    case 'quotaExceeded403':
      return errors.quotaExceeded();
    case 'backendError500':
      return errors.backendError();
    case 'unavailable503':
      return errors.unavailable();
    case 'authError401':
      return errors.authError();
    case 'insufficientPermissions403':
      return errors.insufficientPermissions();
    case 'hang':
      return 'hang';
  }
}
