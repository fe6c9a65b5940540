import { randomBytes } from 'node:crypto';
import { badRequest } from './graph-error.js';
import { encodeId, keyText } from './ids.js';
import type { Instance, Mailbox } from './mailbox.js';
import { parseBound } from './times.js';

export type DeltaOptions = {
  /** Sync states kept; older delta tokens answer 410 SyncStateNotFound. */
  maxTokens: number;
  /** Page size without Prefer: odata.maxpagesize. */
  defaultPageSize: number;
  /** Whether series masters appear among the instances. */
  includeSeriesMasters: boolean;
  /** Report changes to items outside the window as @removed, as Graph does. */
  outOfWindowRemovals: boolean;
  /** Start every round with an empty page that only carries a nextLink. */
  emptyFirstPage: boolean;
  /** Send this many unchanged items again in each incremental round. */
  replay: number;
};

export const DEFAULT_DELTA_OPTIONS: DeltaOptions = {
  maxTokens: 32,
  defaultPageSize: 10,
  includeSeriesMasters: false,
  outOfWindowRemovals: true,
  emptyFirstPage: false,
  replay: 0,
};

type Snapshot = {
  calendarId: string;
  start: number;
  end: number;
  seq: number;
  versions: Map<string, string>;
};
type Round = {
  items: Record<string, unknown>[];
  deltaToken: string;
  pageSize: number;
  calendarId: string;
  start: number;
  end: number;
};
/** A skip token: the round, the offset of the page, and the round's window (for a restart). */
type SkipState = { r: string; o: number; s: number; e: number };
type DeltaState = { g: number; s: number; e: number; c: string };

export type DeltaRequest = {
  base: string;
  calendarId: string;
  query: URLSearchParams;
  pageSize: number | null;
  immutable: boolean;
  render: (instance: Instance) => Record<string, unknown>;
  /** Answer as if this call's sync state were gone (a 410 fault rule). */
  lost?: boolean;
};

export type DeltaReply = { status: number; body: unknown; headers: Record<string, string> };

function encodeToken(value: object): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

function decodeToken<T>(text: string): T | null {
  try {
    return JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as T;
  } catch {
    return null;
  }
}

/** A token the emulator never handed out (it cannot even be read): no window is known to restart with. */
function invalidToken(which: 'skip' | 'delta'): Error {
  return badRequest(`The ${which} token is not valid.`, 'ErrorInvalidUrlQuery');
}

const version = (i: Instance) => `${i.type}:${i.changeKey}:${i.start}:${i.end}`;

/**
 * calendarView/delta. Each deltaLink names a generation whose snapshot (item → version) is kept in a
 * bounded cache; the next round diffs the window against it, so changed items come back whole and
 * items gone from the window (deleted, cancelled, moved out) come back as @removed.
 */
export class DeltaTracker {
  readonly #snapshots = new Map<number, Snapshot>();
  readonly #rounds = new Map<string, Round>();
  #generation = 0;
  options: DeltaOptions = { ...DEFAULT_DELTA_OPTIONS };

  constructor(private readonly mailbox: Mailbox) {}

  /** Forgets every sync state: every delta and skip token answers 410 from now on. */
  expireAll(): void {
    this.#snapshots.clear();
    this.#rounds.clear();
  }

  get highestGeneration(): number {
    return this.#generation;
  }

  handle(request: DeltaRequest): DeltaReply {
    const { query } = request;
    const skip = query.get('$skiptoken');
    if (skip) {
      const state = decodeToken<SkipState>(skip);
      if (!state || typeof state.s !== 'number' || typeof state.e !== 'number') throw invalidToken('skip');
      const round = this.#rounds.get(state.r);
      if (request.lost || !round || round.calendarId !== request.calendarId) {
        this.#rounds.delete(state.r);
        return this.#gone(request, state.s, state.e);
      }
      return this.#page(request, state.r, round, state.o);
    }
    const tokenText = query.get('$deltatoken');
    let snapshot: Snapshot | null = null;
    let start: number | null;
    let end: number | null;
    if (tokenText) {
      const token = decodeToken<DeltaState>(tokenText);
      if (!token || typeof token.s !== 'number' || typeof token.e !== 'number') throw invalidToken('delta');
      const found = this.#snapshots.get(token.g);
      if (request.lost || !found || found.calendarId !== request.calendarId) {
        return this.#gone(request, token.s, token.e, token.g);
      }
      snapshot = found;
      start = found.start;
      end = found.end;
    } else {
      start = parseBound(query.get('startDateTime'));
      end = parseBound(query.get('endDateTime'));
      if (start === null || end === null) {
        throw badRequest(
          'This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.',
          'ErrorInvalidParameter',
        );
      }
      if (end < start)
        throw badRequest('The end of the time window is before its start.', 'ErrorInvalidParameter');
      if (request.lost) return this.#gone(request, start, end);
    }
    const current = this.mailbox.instancesIn(
      request.calendarId,
      start,
      end,
      this.options.includeSeriesMasters,
    );
    const items = snapshot ? this.#changesSince(snapshot, current, request) : current.map(request.render);
    const generation = ++this.#generation;
    this.#snapshots.set(generation, {
      calendarId: request.calendarId,
      start,
      end,
      seq: this.mailbox.seq,
      versions: new Map(current.map((i) => [keyText(i.key), version(i)])),
    });
    for (const old of this.#snapshots.keys()) {
      if (this.#snapshots.size <= this.options.maxTokens) break;
      this.#snapshots.delete(old);
    }
    const pageSize = Math.max(1, request.pageSize ?? this.options.defaultPageSize);
    const roundId = randomBytes(9).toString('base64url');
    const deltaToken = encodeToken({ g: generation, s: start, e: end, c: request.calendarId });
    const round: Round = { items, deltaToken, pageSize, calendarId: request.calendarId, start, end };
    this.#rounds.set(roundId, round);
    for (const old of this.#rounds.keys()) {
      if (this.#rounds.size <= 64) break;
      this.#rounds.delete(old);
    }
    return this.#page(request, roundId, round, this.options.emptyFirstPage ? -1 : 0);
  }

  #changesSince(snapshot: Snapshot, current: Instance[], request: DeltaRequest): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    const seen = new Set<string>();
    const removed = (id: string) =>
      out.push({ '@odata.type': '#microsoft.graph.event', id, '@removed': { reason: 'deleted' } });
    let replays = this.options.replay;
    for (const instance of current) {
      const key = keyText(instance.key);
      seen.add(key);
      if (snapshot.versions.get(key) !== version(instance)) out.push(request.render(instance));
      else if (replays-- > 0) out.push(request.render(instance));
    }
    for (const key of snapshot.versions.keys()) {
      if (seen.has(key)) continue;
      const [eventId = '', start] = key.split('@');
      const itemKey = { eventId, originalStart: start === undefined ? null : Number(start) };
      removed(encodeId(itemKey, snapshot.calendarId, request.immutable));
      seen.add(eventId);
    }
    if (!this.options.outOfWindowRemovals) return out;
    const touched = [...this.mailbox.events.values()]
      .filter((e) => e.calendarId === snapshot.calendarId && e.seq > snapshot.seq)
      .map((e) => e.id)
      .concat(
        [...this.mailbox.tombstones]
          .filter(([, t]) => t.calendarId === snapshot.calendarId && t.seq > snapshot.seq)
          .map(([id]) => id),
      );
    for (const eventId of touched) {
      const inWindow =
        current.some((i) => i.key.eventId === eventId) ||
        [...snapshot.versions.keys()].some((k) => k.startsWith(eventId));
      if (inWindow || seen.has(eventId)) continue;
      seen.add(eventId);
      removed(encodeId({ eventId, originalStart: null }, snapshot.calendarId, request.immutable));
    }
    return out;
  }

  #page(request: DeltaRequest, roundId: string, round: Round, offset: number): DeltaReply {
    const from = Math.max(0, offset);
    const to = offset < 0 ? 0 : from + round.pageSize;
    const value = round.items.slice(from, to);
    const body: Record<string, unknown> = {
      '@odata.context': `${new URL(request.base).origin}/v1.0/$metadata#Collection(event)`,
      value,
    };
    if (to < round.items.length || offset < 0) {
      const skip: SkipState = { r: roundId, o: to, s: round.start, e: round.end };
      body['@odata.nextLink'] = `${request.base}?$skiptoken=${encodeToken(skip)}`;
    } else {
      body['@odata.deltaLink'] = `${request.base}?$deltatoken=${round.deltaToken}`;
      this.#rounds.delete(roundId);
    }
    const applied = ['odata.track-changes'];
    if (request.pageSize !== null) applied.push(`odata.maxpagesize=${round.pageSize}`);
    return { status: 200, body, headers: { 'preference-applied': applied.join(', ') } };
  }

  /**
   * 410 with a Location that starts the round over, per the delta query documentation: an empty
   * `$deltatoken` and the round's window, so following it is a working initial request.
   */
  #gone(request: DeltaRequest, start: number, end: number, generation?: number): DeltaReply {
    const window = `&startDateTime=${new Date(start).toISOString()}&endDateTime=${new Date(end).toISOString()}`;
    const body = {
      error: {
        code: 'SyncStateNotFound',
        message: `The sync state generation is not found; generation=${generation ?? 0};[highest=${this.#generation}]`,
        innerError: {
          date: new Date().toISOString().replace(/\.\d{3}Z$/, ''),
          'request-id': randomBytes(16).toString('hex'),
        },
      },
    };
    return { status: 410, body, headers: { location: `${request.base}?$deltatoken=${window}` } };
  }
}
