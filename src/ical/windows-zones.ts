import { findIana, findWindows, WINDOWS_TO_IANA_MAP } from 'windows-iana';

/**
 * Exchange and older Outlook write a zone's *display name* as the TZID ("(UTC+01:00) Amsterdam, Berlin,
 * Bern, Rome, Stockholm, Vienna", "(GMT+10:00) Canberra, Melbourne, Sydney", or the same without the
 * offset prefix). Most display names list cities that are IANA locations; the ones that do not are
 * listed here, keyed by their normalised text.
 */
const DISPLAY_NAMES: Record<string, string> = {
  'eastern time us canada': 'America/New_York',
  'central time us canada': 'America/Chicago',
  'mountain time us canada': 'America/Denver',
  'pacific time us canada': 'America/Los_Angeles',
  'pacific time us canada tijuana': 'America/Los_Angeles',
  'atlantic time canada': 'America/Halifax',
  alaska: 'America/Anchorage',
  hawaii: 'Pacific/Honolulu',
  arizona: 'America/Phoenix',
  newfoundland: 'America/St_Johns',
  saskatchewan: 'America/Regina',
  'indiana east': 'America/Indiana/Indianapolis',
  'central america': 'America/Guatemala',
  brasilia: 'America/Sao_Paulo',
  'coordinated universal time': 'UTC',
  'greenwich mean time': 'Europe/London',
  'west central africa': 'Africa/Lagos',
  'international date line west': 'Etc/GMT+12',
  'mid atlantic': 'Etc/GMT+2',
  'midway island samoa': 'Pacific/Pago_Pago',
  'kuala lumpur singapore': 'Asia/Kuala_Lumpur',
  'canberra melbourne sydney': 'Australia/Sydney',
  'beijing chongqing hong kong urumqi': 'Asia/Shanghai',
  'osaka sapporo tokyo': 'Asia/Tokyo',
  'chennai kolkata mumbai new delhi': 'Asia/Kolkata',
};

function normalise(text: string): string {
  return text
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/\band\b/g, ' ')
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
}

let cityIndex: Map<string, string> | null = null;

/** Location part of every IANA name windows-iana knows ("buenos aires" → America/Argentina/Buenos_Aires). */
function cities(): Map<string, string> {
  if (cityIndex !== null) return cityIndex;
  const index = new Map<string, string>();
  const names = new Set<string>(Intl.supportedValuesOf('timeZone'));
  for (const entry of WINDOWS_TO_IANA_MAP) for (const name of entry.iana) names.add(name);
  for (const name of names) {
    const location = name.split('/').pop();
    if (location !== undefined && name.includes('/')) index.set(normalise(location.replace(/_/g, ' ')), name);
  }
  cityIndex = index;
  return index;
}

/** The Windows zone id ("W. Europe Standard Time") → its primary IANA zone, or null. */
export function windowsIdToIana(name: string): string | null {
  const found = findIana(name.trim());
  return found[0] ?? null;
}

/** An IANA zone → the Windows zone id Exchange and Graph name it by ("W. Europe Standard Time"), or null. */
export function ianaToWindowsId(zone: string): string | null {
  return findWindows(zone)[0] ?? null;
}

/**
 * The offset in minutes a display name starts with ("(UTC+05:30)", "(GMT-03:00)", "UTC+11",
 * "GMT +0100"), and the text after it; offset is null when the name has no such prefix.
 */
export function splitDisplayName(name: string): { offsetMinutes: number | null; text: string } {
  const m = /^\(?\s*(?:UTC|GMT)\s*(?:([+-])\s*(\d{1,2})(?::?(\d{2}))?)?\s*\)?\s*(.*)$/i.exec(name.trim());
  if (m === null) return { offsetMinutes: null, text: name };
  const [, sign, hours, minutes, text = ''] = m;
  if (sign === undefined || hours === undefined) {
    // "(UTC) Dublin, Edinburgh" and plain "GMT": a zero offset.
    return { offsetMinutes: /^\(?\s*(?:UTC|GMT)\s*\)/i.test(name.trim()) ? 0 : null, text };
  }
  const total = Number(hours) * 60 + Number(minutes ?? '0');
  return { offsetMinutes: sign === '-' ? -total : total, text };
}

/**
 * Candidate IANA zones for a display name, best first: a known display text, then each listed city
 * that is an IANA location.
 */
export function displayNameCandidates(text: string): string[] {
  const key = normalise(text);
  if (key === '') return [];
  const out: string[] = [];
  const known = DISPLAY_NAMES[key];
  if (known !== undefined) out.push(known);
  for (const [prefix, zone] of Object.entries(DISPLAY_NAMES)) {
    if (key.startsWith(prefix + ' ') && !out.includes(zone)) out.push(zone);
  }
  const index = cities();
  for (const part of text.split(/[,;:/]|\s-\s/)) {
    const zone = index.get(normalise(part.replace(/\(.*?\)/g, '')));
    if (zone !== undefined && !out.includes(zone)) out.push(zone);
  }
  return out;
}
