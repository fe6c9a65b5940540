import { CalendarSyncWorker, type CalendarSyncWorkerOptions } from '../../src/calendar/worker.js';
import { waitFor } from './wait-for.js';

export type ObservedWorker = {
  worker: CalendarSyncWorker;
  /** Connections the scheduler queued, in order. */
  queued: string[];
  /**
   * Waits until `count` whole scans have run after this call (one more end than that, since a scan
   * may have been under way), and returns the connections they queued.
   */
  nextScans: (count: number) => Promise<string[]>;
};

/** A started sync worker whose scans and queued connections a test can see and wait on. */
export async function startObservedWorker(options: CalendarSyncWorkerOptions): Promise<ObservedWorker> {
  let scans = 0;
  const worker = new CalendarSyncWorker({ ...options, onScan: () => scans++ });
  const queued: string[] = [];
  const enqueue = worker.enqueue.bind(worker);
  worker.enqueue = async (id: string) => {
    queued.push(id);
    await enqueue(id);
  };
  await worker.start();
  return {
    worker,
    queued,
    nextScans: async (count) => {
      const from = scans;
      const queuedBefore = queued.length;
      await waitFor(`${count} scans of the sync worker`, () => scans >= from + count + 1);
      return queued.slice(queuedBefore);
    },
  };
}
