import type { KnownEvents } from '../port/provider.js';

/** One object of a listing: its remote id and version tag (null where the provider gives none). */
type Listed = { remoteId: string; etag: string | null };

/**
 * A full listing handed over page by page (the streaming form of `diffListing`). It follows what the
 * caller holds once it has applied every page handed over so far: what it knew, plus what was handed
 * over, minus what was reported removed. So each page names only what differs from that, and the end
 * of the listing names what the caller holds that the listing did not list.
 */
export class StreamedListing {
  readonly #held: Map<string, string | null>;
  readonly #listed = new Set<string>();

  constructor(known: KnownEvents) {
    this.#held = new Map(known);
  }

  /**
   * The objects of one page to hand over: new, with another etag than the one held, or with no etag
   * to compare. An object listed twice in the page counts once, by its last entry.
   */
  changedOf<T extends Listed>(page: Iterable<T>): T[] {
    const latest = new Map<string, T>();
    for (const object of page) latest.set(object.remoteId, object);
    const changed: T[] = [];
    for (const object of latest.values()) {
      this.#listed.add(object.remoteId);
      const same = object.etag !== null && this.#held.get(object.remoteId) === object.etag;
      if (same) continue;
      this.#held.set(object.remoteId, object.etag);
      changed.push(object);
    }
    return changed;
  }

  /** Whether the caller holds this object (it knew it, or a page handed it over). */
  holds(remoteId: string): boolean {
    return this.#held.has(remoteId);
  }

  /** Objects reported removed by a page: the caller no longer holds them. */
  removed(remoteIds: Iterable<string>): string[] {
    const gone: string[] = [];
    for (const remoteId of remoteIds) {
      this.#listed.delete(remoteId);
      if (this.#held.delete(remoteId)) gone.push(remoteId);
    }
    return gone;
  }

  /** The listing starts over (the provider lost its state midway): what it listed so far counts no more. */
  restart(): void {
    this.#listed.clear();
  }

  /** At the end: what the caller holds that the listing did not list. */
  unlisted(): string[] {
    const gone = [...this.#held.keys()].filter((remoteId) => !this.#listed.has(remoteId));
    for (const remoteId of gone) this.#held.delete(remoteId);
    return gone;
  }
}
