import type { GuardedHttp } from '../../../integrations/index.js';
import { ProviderError, type ProviderErrorCode } from '../../../integrations/index.js';
import { CalDavClient, type CalDavClientOptions } from './caldav-client.js';
import {
  CALDAV,
  type DavResponse,
  type PropName,
  PROP,
  child,
  childrenNamed,
  decodePath,
  findProp,
  propHrefs,
  propText,
} from './caldav-xml.js';

export type DiscoveredCalendar = {
  url: string;
  displayName: string | null;
  ctag: string | null;
  syncToken: string | null;
  /** False when the collection names its components and VEVENT is not among them (a task list). */
  supportsEvents: boolean;
};

export type DiscoveryInput = { url: string; username: string; password: string };

const COLLECTION_PROPS = [
  PROP.resourcetype,
  PROP.displayname,
  PROP.getctag,
  PROP.syncToken,
  PROP.supportedComponents,
] as const;

const PRINCIPAL_PROPS = [PROP.currentUserPrincipal, PROP.calendarHomeSet] as const;

/**
 * Finds the calendars behind a URL the user typed: a server root, a /.well-known/caldav address, a
 * principal, a calendar home or one calendar. Errors that mean "wrong place" move on to the next
 * candidate; errors that mean "wrong credentials" or "not allowed to go there" end the search.
 */
export async function discoverCalendars(
  http: GuardedHttp,
  input: DiscoveryInput,
  options: CalDavClientOptions = {},
): Promise<{ calendars: DiscoveredCalendar[] }> {
  const start = await http.checkUrl(input.url);
  const client = new CalDavClient(http, input, options);
  let homes: string[] = [];
  let principal: string | null = null;
  let lastError: ProviderError | undefined;

  for (const candidate of candidates(start)) {
    const answer = await probe(client, candidate, [PROP.resourcetype, ...PRINCIPAL_PROPS]);
    if (answer instanceof ProviderError) {
      lastError = answer;
      continue;
    }
    const { response, url } = answer;
    if (candidate === start.toString() && isCalendar(response)) {
      const own = await client.propfind(url, 0, COLLECTION_PROPS);
      return { calendars: own.responses.slice(0, 1).map(toCalendar) };
    }
    homes = propHrefs(response, PROP.calendarHomeSet, url);
    principal = propHrefs(response, PROP.currentUserPrincipal, url)[0] ?? null;
    if (homes.length > 0 || principal) break;
  }

  if (homes.length === 0 && principal) {
    ensureSameSite(start, principal);
    const answer = await probe(client, principal, [PROP.calendarHomeSet]);
    if (answer instanceof ProviderError) lastError = answer;
    else homes = propHrefs(answer.response, PROP.calendarHomeSet, answer.url);
  }
  if (homes.length === 0) {
    const why = lastError ? ` (last answer: ${lastError.message})` : '';
    throw new ProviderError('NOT_FOUND', `no CalDAV calendar home found from ${input.url}${why}`);
  }

  const calendars: DiscoveredCalendar[] = [];
  const seen = new Set<string>();
  for (const home of homes) {
    ensureSameSite(start, home);
    const listing = await client.propfind(home, 1, COLLECTION_PROPS);
    for (const response of listing.responses) {
      if (!isCalendar(response) || seen.has(response.url)) continue;
      seen.add(response.url);
      calendars.push(toCalendar(response));
    }
  }
  return { calendars };
}

/**
 * The URL itself, then /.well-known/caldav under it (DAViCal behind `php -S` has it only at
 * /caldav.php/.well-known/caldav), then at the host's root. A bare host starts with the well-known
 * address, as RFC 6764 asks.
 */
function candidates(start: URL): string[] {
  const own = start.toString();
  const root = new URL('/.well-known/caldav', start).toString();
  if (start.pathname === '/' || start.pathname === '') return [root, own];
  if (/\/\.well-known\/caldav\/?$/.test(start.pathname)) return [own, root];
  const base = own.endsWith('/') ? own : `${own}/`;
  return [own, new URL('.well-known/caldav', base).toString(), root];
}

/** The failures that mean "not here" come back as values, to try the next candidate. */
async function probe(
  client: CalDavClient,
  url: string,
  props: readonly PropName[],
): Promise<{ response: DavResponse | undefined; url: string } | ProviderError> {
  try {
    const answer = await client.propfind(url, 0, props);
    // Some servers answer a Depth 0 PROPFIND with more than the target; the first is the target.
    const response = answer.responses[0];
    return { response, url: response?.url ?? url };
  } catch (error) {
    if (error instanceof ProviderError && WRONG_PLACE.has(error.code)) return error;
    throw error;
  }
}

// 5xx included: some servers fail on paths they do not serve (DAViCal on properties of its root).
const WRONG_PLACE = new Set<ProviderErrorCode>([
  'NOT_FOUND',
  'REJECTED',
  'BAD_RESPONSE',
  'FORBIDDEN',
  'UNAVAILABLE',
]);

function isCalendar(response: DavResponse | undefined): response is DavResponse {
  return child(findProp(response, PROP.resourcetype), CALDAV, 'calendar') !== undefined;
}

function toCalendar(response: DavResponse): DiscoveredCalendar {
  const components = findProp(response, PROP.supportedComponents);
  const names = childrenNamed(components, CALDAV, 'comp').map((comp) => comp.attrs.name?.toUpperCase());
  return {
    url: response.url,
    displayName: propText(response, PROP.displayname) ?? lastSegment(response.path),
    ctag: propText(response, PROP.getctag),
    syncToken: propText(response, PROP.syncToken),
    supportsEvents: names.length === 0 || names.includes('VEVENT'),
  };
}

function lastSegment(path: string): string | null {
  return decodePath(path).split('/').filter(Boolean).pop() ?? null;
}

/**
 * The principal and home may sit on another host of the same provider (iCloud's pNN-caldav
 * partitions); the password is not sent to any other site a server names.
 */
function ensureSameSite(start: URL, next: string): void {
  const to = new URL(next);
  if (to.hostname === start.hostname) return;
  const site = (host: string) => host.split('.').slice(-2).join('.');
  const literal = /^[\d.]+$|:/.test(start.hostname);
  if (literal || site(start.hostname) !== site(to.hostname)) {
    throw new ProviderError('BAD_RESPONSE', `${start.hostname} sent the calendars to another site: ${next}`);
  }
}
