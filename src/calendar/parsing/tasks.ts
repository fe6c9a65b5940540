import type { Interval } from '../../domain/index.js';
import type { RemoteEvent } from '../port/provider.js';
import { expandOneWithinBudget, type CalendarBudget, type StoredObject } from './expand.js';
import { readFeed, type FeedRead } from './feed.js';
import { readDavEntries, type DavEntries } from '../providers/caldav/caldav-xml.js';

/*
 * What the parser's tasks do, as plain functions of plain data (structured clone): run by the worker
 * threads (worker.ts) and, for the inline parser, on the calling thread.
 */

export type FeedTask = { text: string; maxBytes: number };

export function feed(task: FeedTask): FeedRead {
  return readFeed(task.text, task.maxBytes);
}

export type ExpandTask = {
  events: readonly RemoteEvent[];
  window: Interval;
  zone: string;
  budget: CalendarBudget;
  /** Stop after the object that brings the answer to this many occurrences; the caller sends the rest. */
  occurrencesPerAnswer: number;
};

export type ExpandAnswer = { stored: StoredObject[]; budget: CalendarBudget; read: number };

/** Expands objects from the start of `events` until the answer holds enough occurrences. */
export function expand(task: ExpandTask): ExpandAnswer {
  const { budget } = task;
  const stored: StoredObject[] = [];
  let occurrences = 0;
  let read = 0;
  while (read < task.events.length && occurrences < task.occurrencesPerAnswer) {
    const object = expandOneWithinBudget(task.events[read]!, task.window, task.zone, budget);
    read++;
    if (!object) continue;
    stored.push(object);
    if (object.result.ok) occurrences += object.result.occurrences.length;
  }
  return { stored, budget, read };
}

export type MultiStatusTask = { body: string; baseUrl: string };

/** A CalDAV multistatus answer (a listing, a calendar-multiget) read into its responses. */
export function multistatus(task: MultiStatusTask): DavEntries {
  return readDavEntries(task.body, task.baseUrl);
}
