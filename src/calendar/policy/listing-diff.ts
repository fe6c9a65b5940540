/**
 * What a full listing of a calendar says against what the engine has stored. Pure: each adapter lists
 * in its own way (CalDAV multistatus, an ICS feed, a Google resync, a Graph round or calendarView),
 * then asks this which objects to fetch or report and which are gone.
 */
import type { KnownEvents } from '../port/provider.js';

/** One object of a listing: its remote id and version tag (null where the provider gives none). */
export type ListedObject = { remoteId: string; etag: string | null };

export type ListingDiff<T extends ListedObject> = {
  /** New, or with an etag other than the stored one, or with no etag to compare: to fetch or report. */
  changed: T[];
  /** Listed with the stored etag. */
  unchanged: T[];
  /** Stored but no longer listed. */
  deleted: string[];
};

/**
 * Compares a listing with the stored etags. An object listed twice counts once, by its last entry, at
 * the place of its first. Without an etag nothing shows the object is the one stored, so it is changed.
 */
export function diffListing<T extends ListedObject>(known: KnownEvents, listed: Iterable<T>): ListingDiff<T> {
  const latest = new Map<string, T>();
  for (const object of listed) latest.set(object.remoteId, object);
  const changed: T[] = [];
  const unchanged: T[] = [];
  for (const object of latest.values()) {
    const same = object.etag !== null && known.get(object.remoteId) === object.etag;
    (same ? unchanged : changed).push(object);
  }
  const deleted = [...known.keys()].filter((remoteId) => !latest.has(remoteId));
  return { changed, unchanged, deleted };
}
