/** Messages between bench/load.ts (the measuring process) and bench/load-worker.ts (the load generator). */

export type LoadTarget =
  | { kind: 'get'; path: string; headers?: Record<string, string> }
  | {
      kind: 'bookings';
      path: string;
      headers?: Record<string, string>;
      resourceIds: string[];
      /** Slot n goes to resourceIds[n % length] at firstSlotMs + floor(n / length) * slotMs. */
      firstSlotMs: number;
      slotMs: number;
      /** The first n of this run; the worker answers with the next unused one. */
      firstIndex: number;
    }
  | {
      kind: 'pool-bookings';
      path: string;
      headers?: Record<string, string>;
      /**
       * 'assign-one': POST /bookings naming the whole pool with assign "one"; 'public': the body of
       * POST /public/{org}/{page}/bookings (start, duration, attendee).
       */
      body: { kind: 'assign-one'; resourceIds: string[] } | { kind: 'public' };
      /** Slot n is [firstSlotMs + n * slotMs, + slotMs): every request a time of its own. */
      firstSlotMs: number;
      slotMs: number;
      firstIndex: number;
    };

export type LoadRequest = {
  id: number;
  url: string;
  connections: number;
  durationSeconds: number;
  /**
   * Responses arriving in the first seconds are left out of the window counts: while the connections
   * fill up, a slow server would otherwise lose more of its run to ramp-up than a fast one.
   */
  skipSeconds: number;
  target: LoadTarget;
};

export type LoadResult = {
  /** Responses by HTTP status, over the whole run. */
  statuses: Record<string, number>;
  /** Responses by HTTP status that arrived after skipSeconds and before durationSeconds. */
  windowStatuses: Record<string, number>;
  windowSeconds: number;
  durationSeconds: number;
  errors: number;
  timeouts: number;
  latencyMedianMs: number;
  /** For 'bookings' and 'pool-bookings': the first slot index no request has used yet. */
  nextIndex: number;
};

export type LoadReply =
  { id: number; ok: true; result: LoadResult } | { id: number; ok: false; error: string };
