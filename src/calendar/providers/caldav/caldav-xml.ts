import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { ProviderError } from '../../../integrations/index.js';

export const DAV = 'DAV:';
export const CALDAV = 'urn:ietf:params:xml:ns:caldav';
export const CALSERVER = 'http://calendarserver.org/ns/';

/** Xandikos 0.2.8 names the CalDAV namespace like this in some answers (MKCALENDAR). */
const CALDAV_TYPO = 'urn:ietf:params:xml:ns:carldav:';

export type PropName = readonly [namespace: string, name: string];

export const PROP = {
  getetag: [DAV, 'getetag'],
  resourcetype: [DAV, 'resourcetype'],
  displayname: [DAV, 'displayname'],
  syncToken: [DAV, 'sync-token'],
  currentUserPrincipal: [DAV, 'current-user-principal'],
  getctag: [CALSERVER, 'getctag'],
  calendarHomeSet: [CALDAV, 'calendar-home-set'],
  calendarData: [CALDAV, 'calendar-data'],
  supportedComponents: [CALDAV, 'supported-calendar-component-set'],
} as const satisfies Record<string, PropName>;

/** An element with its namespace resolved, whatever prefix the server chose. */
export type XmlNode = {
  ns: string;
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  /** The element's own text and CDATA, untrimmed. */
  text: string;
};

export type DavResponse = {
  /** The href resolved against the answering URL, percent-decoded path only. */
  path: string;
  /** The href as an absolute URL. */
  url: string;
  /** Response-level status (sync-collection reports removals this way); null when only propstats. */
  status: number | null;
  /** Properties from 2xx propstats; those in 404 propstats are left out. */
  props: XmlNode[];
  /** Precondition names from a DAV:error element (no-uid-conflict, valid-sync-token...). */
  errors: string[];
};

export type MultiStatus = { responses: DavResponse[]; syncToken: string | null };

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  // Needed for numeric character references too: SabreDAV (Nextcloud, Baikal) writes CR as &#13;.
  htmlEntities: true,
});

type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };

export function parseXml(raw: string): XmlNode {
  // A BOM or blank line before the declaration is common and harmless, but the parser refuses it.
  const body = raw.replace(/^\uFEFF?\s+/, '').replace(/^\uFEFF/, '');
  const valid = XMLValidator.validate(body);
  if (valid !== true) {
    throw new ProviderError('BAD_RESPONSE', `the server's XML does not parse: ${valid.err.msg}`);
  }
  const roots = convert(parser.parse(body) as OrderedNode[], new Map([['xml', 'xml']]));
  const root = roots[0];
  if (!root) throw new ProviderError('BAD_RESPONSE', 'the server answered with an empty XML document');
  return root;
}

function convert(nodes: OrderedNode[], scope: ReadonlyMap<string, string>): XmlNode[] {
  const out: XmlNode[] = [];
  for (const node of nodes) {
    const key = Object.keys(node).find((name) => name !== ':@');
    if (!key || key === '#text' || key === '#cdata') continue;
    const attrs = node[':@'] ?? {};
    const inner = new Map(scope);
    for (const [name, value] of Object.entries(attrs)) {
      if (name === 'xmlns') inner.set('', value);
      else if (name.startsWith('xmlns:')) inner.set(name.slice(6), value);
    }
    const colon = key.indexOf(':');
    const prefix = colon < 0 ? '' : key.slice(0, colon);
    const content = (node[key] as OrderedNode[] | undefined) ?? [];
    let ns = inner.get(prefix) ?? '';
    if (ns === CALDAV_TYPO) ns = CALDAV;
    out.push({
      ns,
      name: colon < 0 ? key : key.slice(colon + 1),
      attrs,
      children: convert(content, inner),
      text: textOf(content),
    });
  }
  return out;
}

function textOf(content: OrderedNode[]): string {
  let text = '';
  for (const part of content) {
    if (typeof part['#text'] === 'string') text += part['#text'];
    else if (Array.isArray(part['#cdata'])) text += textOf(part['#cdata'] as OrderedNode[]);
  }
  return text;
}

export function child(node: XmlNode | undefined, ns: string, name: string): XmlNode | undefined {
  return node?.children.find((c) => c.ns === ns && c.name === name);
}

export function childrenNamed(node: XmlNode | undefined, ns: string, name: string): XmlNode[] {
  return node?.children.filter((c) => c.ns === ns && c.name === name) ?? [];
}

export function parseMultiStatus(body: string, baseUrl: string): MultiStatus {
  const root = parseXml(body);
  if (root.ns !== DAV || root.name !== 'multistatus') {
    throw new ProviderError('BAD_RESPONSE', `expected a DAV multistatus, got <${root.name}>`);
  }
  const responses: DavResponse[] = [];
  for (const response of childrenNamed(root, DAV, 'response')) {
    const props: XmlNode[] = [];
    for (const propstat of childrenNamed(response, DAV, 'propstat')) {
      const status = parseStatus(child(propstat, DAV, 'status')?.text);
      if (status !== null && (status < 200 || status > 299)) continue;
      for (const prop of childrenNamed(propstat, DAV, 'prop')) props.push(...prop.children);
    }
    const status = parseStatus(child(response, DAV, 'status')?.text);
    const errors = child(response, DAV, 'error')?.children.map((c) => c.name) ?? [];
    for (const href of childrenNamed(response, DAV, 'href')) {
      const url = resolveHref(href.text, baseUrl);
      if (!url) continue;
      responses.push({ path: decodePath(url.pathname), url: url.toString(), status, props, errors });
    }
  }
  const token = child(root, DAV, 'sync-token')?.text.trim();
  return { responses, syncToken: token ? token : null };
}

/** One response of a multistatus as plain data, all a listing or a calendar-multiget needs of it. */
export type DavEntry = {
  path: string;
  url: string;
  status: number | null;
  etag: string | null;
  /** The calendar-data property's text, when the response carries one. */
  calendarData: string | null;
};

/** A multistatus read into plain data (which crosses to and from the parser's threads as it is). */
export type DavEntries =
  { ok: true; entries: DavEntry[]; syncToken: string | null } | { ok: false; error: string };

/** parseMultiStatus, reduced to hrefs, statuses, etags and calendar data; a refusal is a value. */
export function readDavEntries(body: string, baseUrl: string): DavEntries {
  let answer: MultiStatus;
  try {
    answer = parseMultiStatus(body, baseUrl);
  } catch (error) {
    if (error instanceof ProviderError) return { ok: false, error: error.message };
    throw error;
  }
  const entries = answer.responses.map((response) => ({
    path: response.path,
    url: response.url,
    status: response.status,
    etag: normalizeEtag(propText(response, PROP.getetag)),
    calendarData: propText(response, PROP.calendarData),
  }));
  return { ok: true, entries, syncToken: answer.syncToken };
}

/** Precondition names in a DAV:error body (RFC 4918 §16); empty when the body is not one. */
export function parseDavErrors(body: string): string[] {
  if (!body.trimStart().startsWith('<')) return [];
  try {
    const root = parseXml(body);
    if (root.ns === DAV && root.name === 'error') return root.children.map((c) => c.name);
    if (root.ns === DAV && root.name === 'multistatus') {
      return childrenNamed(root, DAV, 'response').flatMap(
        (r) => child(r, DAV, 'error')?.children.map((c) => c.name) ?? [],
      );
    }
  } catch {
    return [];
  }
  return [];
}

function parseStatus(text: string | undefined): number | null {
  const match = /^\s*HTTP\/[\d.]+\s+(\d{3})/i.exec(text ?? '');
  return match ? Number(match[1]) : null;
}

export function findProp(response: DavResponse | undefined, [ns, name]: PropName): XmlNode | undefined {
  return response?.props.find((p) => p.ns === ns && p.name === name);
}

export function propText(response: DavResponse | undefined, name: PropName): string | null {
  const text = findProp(response, name)?.text.trim();
  return text ? text : null;
}

/** The hrefs inside a property (current-user-principal, calendar-home-set) as absolute URLs. */
export function propHrefs(response: DavResponse | undefined, name: PropName, baseUrl: string): string[] {
  return childrenNamed(findProp(response, name), DAV, 'href')
    .map((href) => resolveHref(href.text, baseUrl)?.toString())
    .filter((url): url is string => url !== undefined);
}

/**
 * Strong and weak tags are kept as sent; a bare token (some servers drop the quotes in getetag) gets
 * the quotes If-Match needs, so listings and write answers compare equal.
 */
export function normalizeEtag(raw: string | null | undefined): string | null {
  const tag = raw?.trim();
  if (!tag) return null;
  if (tag.startsWith('"') || tag.startsWith('W/')) return tag;
  return `"${tag}"`;
}

/**
 * Hrefs come relative or absolute, percent-encoded or raw; Xandikos even sends a whole encoded URL
 * ("http%3A//host/...") in some error bodies.
 */
export function resolveHref(raw: string, baseUrl: string): URL | null {
  let href = raw.trim();
  if (/^https?%3A/i.test(href)) href = safeDecode(href);
  if (!href) return null;
  try {
    return new URL(href, baseUrl);
  } catch {
    return null;
  }
}

/** One spelling per path however the server encoded it, so hrefs from different answers compare equal. */
export function decodePath(path: string): string {
  return path.split('/').map(safeDecode).join('/');
}

export function encodePath(path: string): string {
  return path
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/%40/g, '@'))
    .join('/');
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const PREFIXES: Record<string, string> = { [DAV]: 'd', [CALDAV]: 'c', [CALSERVER]: 'cs' };

function xmlns(): string {
  return Object.entries(PREFIXES)
    .map(([uri, prefix]) => `xmlns:${prefix}="${uri}"`)
    .join(' ');
}

function propXml(props: readonly PropName[]): string {
  const names = props.map(([ns, name]) => {
    const prefix = PREFIXES[ns];
    return prefix ? `<${prefix}:${name}/>` : `<x:${name} xmlns:x="${escapeXml(ns)}"/>`;
  });
  return `<d:prop>${names.join('')}</d:prop>`;
}

const HEAD = '<?xml version="1.0" encoding="utf-8"?>\n';

export function propfindBody(props: readonly PropName[]): string {
  return `${HEAD}<d:propfind ${xmlns()}>${propXml(props)}</d:propfind>`;
}

/** RFC 6578 sync-collection; a null token asks for the initial listing. */
export function syncCollectionBody(
  token: string | null,
  props: readonly PropName[] = [PROP.getetag],
): string {
  const tokenXml = token === null ? '<d:sync-token/>' : `<d:sync-token>${escapeXml(token)}</d:sync-token>`;
  const level = '<d:sync-level>1</d:sync-level>';
  return `${HEAD}<d:sync-collection ${xmlns()}>${tokenXml}${level}${propXml(props)}</d:sync-collection>`;
}

/** hrefs as paths; they are sent percent-encoded. */
export function multigetBody(paths: readonly string[]): string {
  const hrefs = paths.map((path) => `<d:href>${escapeXml(encodePath(path))}</d:href>`).join('');
  const props = propXml([PROP.getetag, PROP.calendarData]);
  return `${HEAD}<c:calendar-multiget ${xmlns()}>${props}${hrefs}</c:calendar-multiget>`;
}

/** Objects whose VEVENT has this UID (text-match is a substring match: callers check the UID). */
export function calendarQueryByUidBody(uid: string): string {
  return (
    `${HEAD}<c:calendar-query ${xmlns()}>${propXml([PROP.getetag, PROP.calendarData])}` +
    '<c:filter><c:comp-filter name="VCALENDAR"><c:comp-filter name="VEVENT"><c:prop-filter name="UID">' +
    `<c:text-match collation="i;octet">${escapeXml(uid)}</c:text-match>` +
    '</c:prop-filter></c:comp-filter></c:comp-filter></c:filter></c:calendar-query>'
  );
}

export function mkcalendarBody(displayName: string): string {
  return (
    `${HEAD}<c:mkcalendar ${xmlns()}><d:set><d:prop>` +
    `<d:displayname>${escapeXml(displayName)}</d:displayname>` +
    '</d:prop></d:set></c:mkcalendar>'
  );
}
