import { availableParallelism } from 'node:os';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { Piscina } from 'piscina';
import type { Interval } from '../../domain/index.js';
import type { RemoteEvent } from '../port/provider.js';
import type { CalendarBudget, StoredObject } from './expand.js';
import type { FeedRead } from './feed.js';
import type { DavEntries } from '../providers/caldav/caldav-xml.js';
import {
  expand,
  feed,
  multistatus,
  type ExpandAnswer,
  type ExpandTask,
  type FeedTask,
  type MultiStatusTask,
} from './tasks.js';

/**
 * Reads calendars (splitting feeds, parsing and expanding objects) off the thread that answers
 * requests. Work goes out in small tasks, so that the answers the calling thread copies back stay
 * small and it never waits long between two of them.
 */
export interface CalendarParser {
  /** A whole iCalendar feed, split into its objects. */
  readFeed(text: string, maxBytes: number): Promise<FeedRead>;
  /** A CalDAV multistatus answer, its hrefs resolved against `baseUrl`, read into its responses. */
  readMultiStatus(body: string, baseUrl: string): Promise<DavEntries>;
  /**
   * Objects expanded within `budget`, which is updated with what they spent, a few thousand
   * occurrences at a time: a caller storing each part as it comes never holds a whole calendar's
   * occurrences in memory.
   */
  expandInParts(
    events: readonly RemoteEvent[],
    window: Interval,
    zone: string,
    budget: CalendarBudget,
  ): AsyncGenerator<StoredObject[]>;
  close(): Promise<void>;
}

type ParserPoolOptions = {
  /** Worker threads at most; they start on demand and stop when idle. */
  threads?: number;
  /** Heap of each worker thread, in MB: a calendar that needs more fails its read, not the process. */
  memoryMb?: number;
  /** A task that runs longer than this is stopped with its thread. */
  taskTimeoutMs?: number;
};

const PARSER_DEFAULTS = {
  threads: Math.max(1, availableParallelism() - 1),
  memoryMb: 128,
  taskTimeoutMs: 60_000,
};

/** Objects and text sent in one task, and occurrences after which a task answers. */
const OBJECTS_PER_TASK = 200;
const CHARS_PER_TASK = 2_000_000;
const OCCURRENCES_PER_ANSWER = 5_000;
/** Objects that crashed their worker in one call before the rest is left for a later sync. */
const CRASHES_PER_CALL = 3;

/** The thread could not finish the task: out of memory, past the task timeout, or it died. */
export class ParserThreadError extends Error {
  constructor(
    readonly reason: 'memory' | 'time' | 'crash',
    detail: string,
  ) {
    super(detail);
    this.name = 'ParserThreadError';
  }
}

type Runner = {
  feed(task: FeedTask): Promise<FeedRead>;
  expand(task: ExpandTask): Promise<ExpandAnswer>;
  multistatus(task: MultiStatusTask): Promise<DavEntries>;
  close(): Promise<void>;
};

/** A pool of worker threads (piscina), as the server and the worker run it. */
export function createParserPool(options: ParserPoolOptions = {}): CalendarParser {
  const settings = { ...PARSER_DEFAULTS, ...options };
  const here = import.meta.url;
  // From the TypeScript sources (tsx, vitest) the thread loads worker.ts through tsx; built, worker.js.
  const filename = new URL(here.endsWith('.ts') ? './source-worker.js' : './worker.js', here).href;
  const pool = new Piscina({
    filename,
    minThreads: 0,
    maxThreads: settings.threads,
    idleTimeout: 30_000,
    resourceLimits: { maxOldGenerationSizeMb: settings.memoryMb },
  });
  const run = async <T>(task: unknown, name: string): Promise<T> => {
    try {
      return (await pool.run(task, {
        name,
        signal: AbortSignal.timeout(settings.taskTimeoutMs),
      })) as T;
    } catch (error) {
      throw threadError(error, settings);
    }
  };
  return new Parser({
    feed: (task) => run(task, 'feed'),
    expand: (task) => run(task, 'expand'),
    multistatus: (task) => run(task, 'multistatus'),
    close: () => pool.destroy(),
  });
}

/**
 * The same work on the calling thread, yielding to the event loop between tasks: for code that reads
 * a calendar without the pool (tools, and tests of the providers alone).
 */
export function inlineParser(): CalendarParser {
  return new Parser({
    feed: async (task) => {
      await yieldToEventLoop();
      return feed(task);
    },
    expand: async (task) => {
      await yieldToEventLoop();
      return expand(task);
    },
    multistatus: async (task) => {
      await yieldToEventLoop();
      return multistatus(task);
    },
    close: async () => undefined,
  });
}

class Parser implements CalendarParser {
  constructor(private readonly runner: Runner) {}

  readFeed(text: string, maxBytes: number): Promise<FeedRead> {
    return this.runner.feed({ text, maxBytes });
  }

  readMultiStatus(body: string, baseUrl: string): Promise<DavEntries> {
    return this.runner.multistatus({ body, baseUrl });
  }

  async *expandInParts(
    events: readonly RemoteEvent[],
    window: Interval,
    zone: string,
    budget: CalendarBudget,
  ): AsyncGenerator<StoredObject[]> {
    let crashes = 0;
    let at = 0;
    while (at < events.length) {
      const chunk = nextChunk(events, at);
      let answer: ExpandAnswer;
      try {
        answer = await this.#expandTask(chunk, window, zone, budget);
      } catch (error) {
        if (!(error instanceof ParserThreadError)) throw error;
        // One object of the chunk is too much for a thread: each is read alone to find which.
        for (const event of chunk) {
          at++;
          if (crashes >= CRASHES_PER_CALL) {
            budget.skipped++;
            continue;
          }
          try {
            yield (await this.#expandTask([event], window, zone, budget)).stored;
          } catch (alone) {
            if (!(alone instanceof ParserThreadError)) throw alone;
            crashes++;
            yield [unreadable(event, alone, budget)];
          }
        }
        if (crashes >= CRASHES_PER_CALL) {
          budget.skipped += events.length - at;
          return;
        }
        continue;
      }
      at += answer.read;
      yield answer.stored;
    }
  }

  async #expandTask(
    events: readonly RemoteEvent[],
    window: Interval,
    zone: string,
    budget: CalendarBudget,
  ): Promise<ExpandAnswer> {
    const answer = await this.runner.expand({
      events,
      window,
      zone,
      budget,
      occurrencesPerAnswer: OCCURRENCES_PER_ANSWER,
    });
    // The thread spent from its copy of the budget; this sync's own budget takes over what is left.
    const { limits: _limits, ...left } = answer.budget;
    Object.assign(budget, left);
    return answer;
  }

  close(): Promise<void> {
    return this.runner.close();
  }
}

function nextChunk(events: readonly RemoteEvent[], from: number): readonly RemoteEvent[] {
  let end = from;
  let chars = 0;
  while (end < events.length && end - from < OBJECTS_PER_TASK) {
    chars += events[end]!.ics.length;
    if (end > from && chars > CHARS_PER_TASK) break;
    end++;
  }
  return events.slice(from, end);
}

/** An object whose reading the thread could not finish is kept, unread, with the reason. */
function unreadable(event: RemoteEvent, error: ParserThreadError, budget: CalendarBudget): StoredObject {
  budget.objects--;
  budget.chars -= event.ics.length;
  return { ...event, result: { ok: false, error: error.message } };
}

function threadError(error: unknown, limits: { memoryMb: number; taskTimeoutMs: number }): unknown {
  const code = (error as { code?: unknown }).code;
  const name = (error as { name?: unknown }).name;
  if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return new ParserThreadError(
      'memory',
      `reading it needs more than the ${limits.memoryMb} MB of memory one read may use`,
    );
  }
  if (name === 'AbortError' || name === 'TimeoutError') {
    return new ParserThreadError('time', `reading it took longer than ${limits.taskTimeoutMs / 1000} s`);
  }
  if (error instanceof Error && /worker|terminated|exited/i.test(error.message)) {
    return new ParserThreadError('crash', `reading it stopped its worker thread (${error.message})`);
  }
  return error;
}
