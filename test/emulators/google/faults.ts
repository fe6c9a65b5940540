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
  'delay',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Which events.list calls a rule matches: incremental (with a sync token) or full (without). */
export const LISTING_KINDS = ['sync-token', 'full'] as const;
export type ListingKind = (typeof LISTING_KINDS)[number];

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
  /** Only events.list calls of this kind: `sync-token` (incremental) or `full`. */
  listing?: ListingKind;
  /** The first `after` matching calls pass; the rule applies from the next one on. */
  after?: number;
  /** Only the n-th matching call (1-based), counted from when the rule was added: `after: n - 1`. */
  nth?: number;
  /** Only calls at or after this moment (epoch ms or RFC 3339), on the clock named by `clock`. */
  from?: number | string;
  /** Only calls before this moment (epoch ms or RFC 3339). */
  until?: number | string;
  /** `emulator` (default): wall clock plus any /clock advance; `wall`: the machine's clock. */
  clock?: 'emulator' | 'wall';
  /** For `delay`: how long the normal answer is held back, in ms. */
  delayMs?: number;
};

/** What a call is judged on. */
export type FaultCall = { method: string; path: string; query: URLSearchParams };

type ActiveRule = FaultRule & {
  remaining: number;
  /** Matching calls seen so far (whether or not they failed). */
  seen: number;
  skip: number;
  window: { from: number; until: number };
  random: () => number;
};

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

const EVENTS_LIST = /^\/calendars\/[^/]+\/events$/;

function moment(value: number | string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const ms = typeof value === 'number' ? value : Date.parse(value);
  if (!Number.isFinite(ms)) throw new Error(`${name} must be epoch milliseconds or an RFC 3339 time`);
  return ms;
}

function wholeAtLeast(value: unknown, least: number, name: string): void {
  if (value !== undefined && !(Number.isInteger(value) && (value as number) >= least)) {
    throw new Error(`${name} must be an integer of at least ${least}`);
  }
}

export function validateRule(input: unknown): FaultRule {
  const rule = (input ?? {}) as FaultRule;
  if (!FAULT_KINDS.includes(rule.kind)) throw new Error(`kind must be one of ${FAULT_KINDS.join(', ')}`);
  if (rule.probability !== undefined && !(rule.probability >= 0 && rule.probability <= 1)) {
    throw new Error('probability must be within [0, 1]');
  }
  if (rule.listing !== undefined && !LISTING_KINDS.includes(rule.listing)) {
    throw new Error(`listing must be one of ${LISTING_KINDS.join(', ')}`);
  }
  wholeAtLeast(rule.count, 0, 'count');
  wholeAtLeast(rule.after, 0, 'after');
  wholeAtLeast(rule.nth, 1, 'nth');
  if (rule.nth !== undefined && rule.after !== undefined) throw new Error('give nth or after, not both');
  if (rule.clock !== undefined && rule.clock !== 'emulator' && rule.clock !== 'wall') {
    throw new Error('clock must be emulator or wall');
  }
  const from = moment(rule.from, 'from', Number.NEGATIVE_INFINITY);
  if (from >= moment(rule.until, 'until', Number.POSITIVE_INFINITY))
    throw new Error('from must be before until');
  if (rule.kind === 'delay') wholeAtLeast(rule.delayMs ?? -1, 1, 'delayMs');
  else if (rule.delayMs !== undefined) throw new Error('delayMs belongs to the delay kind');
  return rule;
}

/** The API failures to inject; rules are tried in the order they were added. */
export class Faults {
  #rules: ActiveRule[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  add(rule: FaultRule): void {
    const remaining = rule.count ?? (rule.probability === undefined ? 1 : Number.POSITIVE_INFINITY);
    this.#rules.push({
      ...rule,
      remaining,
      seen: 0,
      skip: rule.nth === undefined ? (rule.after ?? 0) : rule.nth - 1,
      window: {
        from: moment(rule.from, 'from', Number.NEGATIVE_INFINITY),
        until: moment(rule.until, 'until', Number.POSITIVE_INFINITY),
      },
      random: generator(rule.seed ?? 1),
    });
  }

  clear(): void {
    this.#rules = [];
  }

  get pending(): number {
    return this.#rules.filter((r) => r.remaining > 0).length;
  }

  /** The fault this call gets, if any. */
  take(call: FaultCall): FaultRule | null {
    for (const rule of this.#rules) {
      if (rule.remaining <= 0 || !this.#matches(rule, call)) continue;
      rule.seen++;
      if (rule.seen <= rule.skip) continue;
      if (rule.probability !== undefined && rule.random() >= rule.probability) continue;
      rule.remaining--;
      return rule;
    }
    return null;
  }

  #matches(rule: ActiveRule, { method, path, query }: FaultCall): boolean {
    if (rule.method !== undefined && rule.method.toUpperCase() !== method) return false;
    if (rule.path !== undefined && !path.includes(rule.path)) return false;
    if (rule.listing !== undefined) {
      if (method !== 'GET' || !EVENTS_LIST.test(path)) return false;
      if ((rule.listing === 'sync-token') !== query.has('syncToken')) return false;
    }
    const at = rule.clock === 'wall' ? Date.now() : this.now();
    return at >= rule.window.from && at < rule.window.until;
  }
}

/** The failure a rule answers with; `hang` and `delay` are carried out by the server. */
export function faultError(rule: FaultRule): GoogleApiError | 'hang' | 'delay' {
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
    case 'delay':
      return 'delay';
  }
}
