// The parser's worker thread when Sched runs from its TypeScript sources (tsx, vitest): worker threads
// do not inherit the loader that reads TypeScript, so the worker module is loaded through tsx here.
// Built code (dist/) starts worker.js directly and never loads this file.
import { tsImport } from 'tsx/esm/api';

export const { feed, expand, multistatus } = await tsImport(
  new URL('./worker.ts', import.meta.url).href,
  import.meta.url,
);
