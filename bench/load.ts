import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadReply, LoadRequest, LoadResult } from './load-protocol.js';

const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKER = fileURLToPath(new URL('./load-worker.ts', import.meta.url));
/** Time a load run may take beyond its own duration before it counts as hung. */
const GRACE_MS = 60_000;

/** A long-lived child process running autocannon; one load at a time. */
export class LoadGenerator {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (result: LoadResult) => void; reject: (error: Error) => void }
  >();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (reply: LoadReply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new Error(`load generator: ${reply.error}`));
    });
    child.on('exit', (code, signal) => {
      for (const waiter of this.pending.values()) {
        waiter.reject(new Error(`the load generator exited (code ${code}, signal ${signal})`));
      }
      this.pending.clear();
    });
  }

  static start(): LoadGenerator {
    // tsx's loader is registered per process, so the child gets it through --import (resolved from the
    // project root, where node_modules/tsx lives).
    const child = fork(WORKER, [], {
      cwd: PROJECT_ROOT,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new LoadGenerator(child);
  }

  run(request: Omit<LoadRequest, 'id'>): Promise<LoadResult> {
    const id = this.nextId++;
    return new Promise<LoadResult>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.pending.delete(id);
          reject(new Error(`a ${request.durationSeconds}s load on ${request.url} did not finish in time`));
        },
        request.durationSeconds * 1000 + GRACE_MS,
      );
      this.pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send({ ...request, id } satisfies LoadRequest);
    });
  }

  close(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
  }
}

/** Responses with this status per second, in the steady-state window of the run. */
export function rateOf(result: LoadResult, status: number): number {
  return (result.windowStatuses[String(status)] ?? 0) / result.windowSeconds;
}

export function unexpectedOf(result: LoadResult, status: number): number {
  const other = Object.entries(result.statuses)
    .filter(([code]) => code !== String(status))
    .reduce((sum, [, count]) => sum + count, 0);
  return other + result.errors + result.timeouts;
}

export function describeStatuses(result: LoadResult): string {
  const parts = Object.entries(result.statuses).map(([status, count]) => `${status}×${count}`);
  if (result.errors) parts.push(`errors×${result.errors}`);
  if (result.timeouts) parts.push(`timeouts×${result.timeouts}`);
  return parts.join(' ') || 'no responses';
}
