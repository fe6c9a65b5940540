import { setPriority } from 'node:os';

/*
 * The parser's worker thread (piscina): what reading a calendar costs runs here, never on the thread
 * that answers requests.
 */

const PARSER_NICE = 10;

// Reading calendars gives way to the thread that answers requests when they compete for a core
// (Linux keeps a nice value per thread, so this lowers only the worker's own).
try {
  setPriority(PARSER_NICE);
} catch {
  // Not allowed here, or not per thread on this system: the worker runs at the usual priority.
}

export { expand, feed, multistatus } from './tasks.js';
