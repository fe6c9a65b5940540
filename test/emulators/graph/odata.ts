import { badRequest } from './graph-error.js';
import type { Instance } from './mailbox.js';

/** Which extended properties `$expand=singleValueExtendedProperties(...)` asks for; 'all' without a filter. */
export type ExtendedExpand = { ids: string[] | 'all' } | null;

const STRING = `'((?:[^']|'')*)'`;
const unquote = (text: string) => text.replace(/''/g, "'");

function invalid(text: string): never {
  throw badRequest(`Invalid filter clause: ${text}`, 'ErrorInvalidUrlQueryFilter');
}

/** Splits on a separator outside parentheses and string literals. */
function splitTop(text: string, needle: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let last = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === "'") quoted = !quoted;
    else if (!quoted && char === '(') depth++;
    else if (!quoted && char === ')') depth--;
    else if (!quoted && depth === 0 && text.slice(i, i + needle.length).toLowerCase() === needle) {
      parts.push(text.slice(last, i));
      last = i + needle.length;
      i += needle.length - 1;
    }
  }
  parts.push(text.slice(last));
  return parts.map((p) => p.trim());
}

export function parseExpand(text: string | null): ExtendedExpand {
  if (!text) return null;
  for (const item of splitTop(text, ',')) {
    const match = /^singleValueExtendedProperties(?:\(\s*\$filter\s*=\s*(.+)\))?$/i.exec(item.trim());
    if (!match) continue;
    if (!match[1]) return { ids: 'all' };
    const ids = splitTop(match[1], ' or ').map((clause) => {
      const id = new RegExp(`^id\\s+eq\\s+${STRING}$`, 'i').exec(clause);
      return id ? unquote(id[1]!) : invalid(clause);
    });
    return { ids };
  }
  return null;
}

type Predicate = (instance: Instance) => boolean;

const PROPERTY_FILTERS: Record<string, (instance: Instance) => string | null> = {
  icaluid: (i) => i.event.iCalUId,
  subject: (i) => i.fields.subject,
  type: (i) => i.type,
  transactionid: (i) => i.event.transactionId,
};

function clause(text: string): Predicate {
  const trimmed = text.replace(/^\((.*)\)$/, '$1').trim();
  const any = new RegExp(
    `^singleValueExtendedProperties/any\\(\\s*(\\w+)\\s*:\\s*\\1/id\\s+eq\\s+${STRING}(?:\\s+and\\s+\\1/value\\s+eq\\s+${STRING})?\\s*\\)$`,
    'i',
  ).exec(trimmed);
  if (any) {
    const id = unquote(any[2]!).toLowerCase();
    const value = any[3] === undefined ? null : unquote(any[3]);
    return (i) =>
      i.event.extended.some((p) => p.id.toLowerCase() === id && (value === null || p.value === value));
  }
  const eq = new RegExp(`^(\\w+)\\s+eq\\s+${STRING}$`, 'i').exec(trimmed);
  const read = eq ? PROPERTY_FILTERS[eq[1]!.toLowerCase()] : undefined;
  if (eq && read) {
    const value = unquote(eq[2]!);
    return (i) => read(i) === value;
  }
  return invalid(text);
}

/** The few $filter forms a calendar client uses: extended property Any(), and eq on a few properties. */
export function parseFilter(text: string | null): Predicate | null {
  if (!text) return null;
  const clauses = splitTop(text.trim(), ' and ').map(clause);
  return (instance) => clauses.every((c) => c(instance));
}
