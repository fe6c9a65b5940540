import { ProviderError } from '../../../integrations/index.js';
import {
  BASE_PREFER,
  type GraphRequest,
  type OutlookClient,
  graphError,
  graphErrorCode,
} from './outlook-client.js';
import { type GraphEvent, isGraphEvent } from './map-outlook-event.js';

/**
 * What a calendarView/delta round hands over as it goes: each page's entries in order, events and
 * removals (`@removed`) alike (an id may come again; the last word on it wins), or word that Graph
 * lost the round's sync state midway and the round begins again from scratch, after which its pages
 * list the whole window.
 */
export type DeltaStep = { kind: 'page'; entries: GraphEvent[] } | { kind: 'restarted' };

/** The sync state is gone (410, or a 4xx naming it): the round must start over from scratch. */
export class SyncStateLost extends Error {}

const RESET_CODES = new Set(['syncstatenotfound', 'resyncrequired', 'syncstateinvalid']);

/** Rounds are bounded so a server that keeps handing out nextLinks cannot keep a sync busy forever. */
export const MAX_PAGES = 10_000;
/** A round that loses its sync state this many times in a row is given up as SyncStateLost. */
const MAX_RESTARTS = 3;

/**
 * Follows one delta round from `first` (an initial calendarView/delta request or a stored deltaLink)
 * through every nextLink, page by page; returns the deltaLink it ends with.
 *
 * A 410 (or a sync-state error code) on any page means the round must start over with a full
 * synchronization (delta query documentation). The round restarts from the answer's Location (a
 * request with an empty `$deltatoken` and the round's window) or, without one, from `restart`; with
 * neither, or after MAX_RESTARTS, it throws SyncStateLost.
 */
export async function* deltaPages(
  client: OutlookClient,
  first: GraphRequest,
  pageSize: number,
  restart?: GraphRequest,
): AsyncGenerator<DeltaStep, string, undefined> {
  let restarts = 0;
  const headers = { prefer: `${BASE_PREFER}, odata.maxpagesize=${pageSize}` };
  const send = (request: GraphRequest) => {
    const sent = client.send({ ...request, headers });
    // Seen when the caller asks for the page; a caller that stops first must not leave it unhandled.
    sent.catch(() => undefined);
    return sent;
  };
  let pending = send(first);
  for (let page = 0; page < MAX_PAGES; page++) {
    const response = await pending;
    const code = graphErrorCode(response)?.toLowerCase() ?? '';
    if (
      response.status === 410 ||
      (response.status >= 400 && response.status < 500 && RESET_CODES.has(code))
    ) {
      const location = response.headers.location;
      const again: GraphRequest | undefined = location ? { method: 'GET', path: location } : restart;
      if (!again || restarts >= MAX_RESTARTS) {
        throw new SyncStateLost(`delta answered ${response.status} ${code}`);
      }
      restarts++;
      yield { kind: 'restarted' };
      pending = send(again);
      continue;
    }
    if (response.status !== 200) throw graphError(response, 'GET calendarView/delta');
    const body = response.body as {
      value?: unknown;
      '@odata.nextLink'?: unknown;
      '@odata.deltaLink'?: unknown;
    } | null;
    if (!body || !Array.isArray(body.value)) {
      throw new ProviderError('BAD_RESPONSE', 'calendarView/delta answered without a value array');
    }
    const entries = (body.value as unknown[]).filter(isGraphEvent);
    const next = body['@odata.nextLink'];
    const delta = body['@odata.deltaLink'];
    if (typeof next !== 'string' && typeof delta !== 'string') {
      throw new ProviderError(
        'BAD_RESPONSE',
        'a calendarView/delta page carried neither a nextLink nor a deltaLink',
      );
    }
    // The next page is asked for before this one is handed over: it comes in while the caller
    // converts and stores this one (one page in flight at most; left to finish if the caller stops).
    if (typeof next === 'string') pending = send({ method: 'GET', path: next });
    yield { kind: 'page', entries };
    if (typeof next !== 'string') return delta as string;
  }
  throw new ProviderError('BAD_RESPONSE', `calendarView/delta did not end within ${MAX_PAGES} pages`);
}
