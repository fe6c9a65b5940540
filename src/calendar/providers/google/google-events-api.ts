import { ProviderError } from '../../../integrations/index.js';
import type { GoogleClient, Query } from './google-client.js';
import type { GoogleChannel, GoogleEvent, GoogleEventList } from './google-types.js';

/** Google's largest page; fewer requests for a full listing. */
export const MAX_PAGE_SIZE = 2500;
/** A listing longer than this many pages is taken for a server that never says it is done. */
const MAX_PAGES = 10_000;

export type Listing = { items: GoogleEvent[]; syncToken: string | null };
type Page = { items: GoogleEvent[]; nextPageToken: string | null; syncToken: string | null };

/** The raw Calendar v3 calls on one calendar's events, JSON in and out. */
export class GoogleEventsApi {
  readonly #events: string;

  constructor(
    private readonly client: GoogleClient,
    readonly calendarId: string,
    private readonly pageSize: number,
  ) {
    this.#events = `/calendars/${encodeURIComponent(calendarId)}/events`;
  }

  eventPath(id: string): string {
    return `${this.#events}/${encodeURIComponent(id)}`;
  }

  /** Every page of a listing gathered; null when Google refuses the sync token (see `pages`). */
  async list(query: Query): Promise<Listing | null> {
    const items: GoogleEvent[] = [];
    const pages = this.pages(query);
    for (;;) {
      const step = await pages.next();
      if (step.done) return step.value === null ? null : { items, ...step.value };
      items.push(...step.value);
    }
  }

  /**
   * A listing page by page as it comes; it ends with the sync token. Pages may be short or empty and
   * still carry nextPageToken; only the last carries nextSyncToken. Ends with null when Google
   * refuses the sync token (410): a full listing must follow.
   *
   * The next page is asked for as soon as a page's token for it is read, before that page is handed
   * over: it comes in while the caller converts and stores this one. At most one page is in flight
   * beyond the one handed over; one the caller stops before is left to finish on its own.
   */
  async *pages(query: Query): AsyncGenerator<GoogleEvent[], { syncToken: string | null } | null, undefined> {
    let next: Promise<Page | null> | null = this.#page(query, undefined);
    for (let page = 0; page < MAX_PAGES && next !== null; page++) {
      const current: Page | null = await next;
      if (current === null) return null;
      next =
        current.nextPageToken !== null && page + 1 < MAX_PAGES
          ? this.#page(query, current.nextPageToken)
          : null;
      // Seen when the caller asks for it; a caller that stops first must not leave it unhandled.
      next?.catch(() => undefined);
      yield current.items;
      if (current.nextPageToken === null) return { syncToken: current.syncToken };
    }
    throw new ProviderError('BAD_RESPONSE', `events.list: more than ${MAX_PAGES} pages`);
  }

  /** One events.list page, checked; null for a refused sync token (410). */
  async #page(query: Query, pageToken: string | undefined): Promise<Page | null> {
    const answer = await this.client.call<GoogleEventList>('GET', this.#events, {
      query: { ...query, maxResults: this.pageSize, pageToken },
      accept: query.syncToken === undefined ? [] : [410],
    });
    if (answer.status === 410) return null;
    const body = answer.body ?? {};
    if (!Array.isArray(body.items ?? [])) {
      throw new ProviderError('BAD_RESPONSE', 'events.list: items is not a list');
    }
    const items = body.items ?? [];
    for (const item of items) {
      if (typeof item?.id !== 'string') {
        throw new ProviderError('BAD_RESPONSE', 'events.list: an item has no id');
      }
    }
    return { items, nextPageToken: body.nextPageToken || null, syncToken: body.nextSyncToken ?? null };
  }

  /** events.get; null when it does not exist. Cancelled (deleted) events are returned as they are. */
  async get(id: string): Promise<GoogleEvent | null> {
    if (id === '') return null;
    const answer = await this.client.call<GoogleEvent>('GET', this.eventPath(id), { accept: [404, 410] });
    return answer.status === 200 ? answer.body : null;
  }

  /**
   * A series' exceptions, cancelled ones included. Exceptions share the master's iCalUID, so one
   * listing by iCalUID finds them without expanding the series (events.instances would page through
   * every generated instance of an open-ended rule).
   */
  async exceptionsOf(master: GoogleEvent): Promise<GoogleEvent[]> {
    if (!master.recurrence?.length) return [];
    const listing = await this.list({ iCalUID: master.iCalUID ?? master.id, showDeleted: true });
    return (listing?.items ?? []).filter((item) => item.recurringEventId === master.id);
  }

  insert(body: Record<string, unknown>) {
    return this.client.call<GoogleEvent>('POST', this.#events, {
      query: { sendUpdates: 'none' },
      body,
      accept: [409],
    });
  }

  patch(id: string, body: Record<string, unknown>, ifMatch: string) {
    return this.client.call<GoogleEvent>('PATCH', this.eventPath(id), {
      query: { sendUpdates: 'none' },
      body,
      ifMatch,
      accept: [404, 410, 412],
    });
  }

  delete(id: string, ifMatch: string | null) {
    return this.client.call<unknown>('DELETE', this.eventPath(id), {
      query: { sendUpdates: 'none' },
      ...(ifMatch === null ? {} : { ifMatch }),
      accept: [404, 410, 412],
    });
  }

  async watch(body: Record<string, unknown>): Promise<GoogleChannel> {
    const answer = await this.client.call<GoogleChannel>('POST', `${this.#events}/watch`, {
      body,
      retry: false,
    });
    return answer.body;
  }

  async stopChannel(id: string, resourceId: string): Promise<void> {
    await this.client.call<unknown>('POST', '/channels/stop', { body: { id, resourceId }, accept: [404] });
  }
}
