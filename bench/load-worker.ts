/**
 * The load generator, in a process of its own so that autocannon never shares an event loop with the
 * servers it measures. It answers one LoadRequest at a time over IPC.
 */
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import type { LoadReply, LoadRequest, LoadResult } from './load-protocol.js';

function requestsOf(request: LoadRequest, counter: { next: number }): autocannon.Request[] {
  const { target } = request;
  const headers = { ...target.headers };
  if (target.kind === 'get') return [{ method: 'GET', path: target.path, headers }];
  if (target.kind === 'pool-bookings') {
    const { body, firstSlotMs, slotMs } = target;
    return [
      {
        method: 'POST',
        path: target.path,
        headers: { ...headers, 'content-type': 'application/json' },
        // A time of its own for every request: whichever member the pool assigns, it is free.
        setupRequest: (req) => {
          const n = counter.next++;
          const start = firstSlotMs + n * slotMs;
          const attendee = { name: `Guest ${n}`, email: `guest${n}@example.com` };
          return {
            ...req,
            body: JSON.stringify(
              body.kind === 'public'
                ? {
                    start_time: new Date(start).toISOString(),
                    duration_minutes: slotMs / 60_000,
                    attendee: { ...attendee, time_zone: 'Europe/Paris' },
                  }
                : {
                    resource_ids: body.resourceIds,
                    assign: 'one',
                    start_time: new Date(start).toISOString(),
                    end_time: new Date(start + slotMs).toISOString(),
                    title: `Intro call: ${attendee.name}`,
                    attendees: [attendee],
                  },
            ),
          };
        },
      },
    ];
  }
  const { resourceIds, firstSlotMs, slotMs } = target;
  return [
    {
      method: 'POST',
      path: target.path,
      headers: { ...headers, 'content-type': 'application/json' },
      // Every request books a slot no other request of the run (or of any earlier run) has used.
      setupRequest: (req) => {
        const n = counter.next++;
        const resourceId = resourceIds[n % resourceIds.length]!;
        const start = firstSlotMs + Math.floor(n / resourceIds.length) * slotMs;
        return {
          ...req,
          body: JSON.stringify({
            resource_ids: [resourceId],
            start_time: new Date(start).toISOString(),
            end_time: new Date(start + slotMs).toISOString(),
            title: 'Bench booking',
            attendees: [{ email: 'guest@example.com', name: 'Guest' }],
          }),
        };
      },
    },
  ];
}

async function runLoad(request: LoadRequest): Promise<LoadResult> {
  const counter = { next: request.target.kind === 'get' ? 0 : request.target.firstIndex };
  const windowStatuses: Record<string, number> = {};
  const started = performance.now();
  const windowStart = started + request.skipSeconds * 1000;
  const windowEnd = started + request.durationSeconds * 1000;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: request.url,
        connections: request.connections,
        duration: request.durationSeconds,
        timeout: 20,
        requests: requestsOf(request, counter),
      },
      (error, finished) => (error ? reject(error as Error) : resolve(finished)),
    );
    instance.on('response', (_client, statusCode) => {
      const now = performance.now();
      if (now < windowStart || now > windowEnd) return;
      windowStatuses[statusCode] = (windowStatuses[statusCode] ?? 0) + 1;
    });
  });
  const statuses: Record<string, number> = {};
  for (const [status, stats] of Object.entries(result.statusCodeStats ?? {})) {
    statuses[status] = stats.count ?? 0;
  }
  return {
    statuses,
    windowStatuses,
    windowSeconds: request.durationSeconds - request.skipSeconds,
    durationSeconds: result.duration,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMedianMs: result.latency.p50,
    nextIndex: counter.next,
  };
}

process.on('message', (message: LoadRequest) => {
  runLoad(message).then(
    (result) => process.send?.({ id: message.id, ok: true, result } satisfies LoadReply),
    (error: unknown) =>
      process.send?.({
        id: message.id,
        ok: false,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      } satisfies LoadReply),
  );
});

// The parent going away (even by a crash) ends this process too.
process.on('disconnect', () => process.exit(0));
