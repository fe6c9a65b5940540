import Fastify, { type FastifyInstance } from 'fastify';
import pg from 'pg';
import type { BenchContext, BenchOutcome } from './context.js';
import { createResources, roundTheClock } from './fixtures.js';
import type { LoadResult, LoadTarget } from './load-protocol.js';
import { comparePair, describeCycles } from './pair.js';
import { dayAfterTomorrowUtc, listen, log, recordStatements, statementSummary } from './support.js';

const RESOURCES = 64;
/** Bookings sent one after another per side to count the WAL each writes. */
const WAL_BOOKINGS = 200;
const SLOT_MS = 30 * 60_000;

type BookingBody = {
  resource_ids: string[];
  start_time: string;
  end_time: string;
  title: string;
  attendees?: unknown[];
};

/**
 * The baseline: no auth, no validation, no availability check, no audit; only the two INSERTs every
 * booking needs (the booking row and its booking_resources row, under the exclusion constraint) in one
 * transaction, through a pg Pool of the size the real app uses.
 */
function bareBookingServer(pool: pg.Pool, organizationId: string): FastifyInstance {
  const app = Fastify({ logger: false });
  app.post('/bookings', async (request, reply) => {
    const body = request.body as BookingBody;
    const client = await pool.connect();
    try {
      await client.query('begin');
      const { rows } = await client.query<{ booking_id: string }>(
        `insert into bookings (organization_id, status, resource_ids, start_time, end_time, title, attendees)
         values ($1, 'confirmed', $2::uuid[], $3, $4, $5, $6::jsonb)
         returning *`,
        [
          organizationId,
          body.resource_ids,
          body.start_time,
          body.end_time,
          body.title,
          JSON.stringify(body.attendees ?? []),
        ],
      );
      const booking = rows[0]!;
      await client.query(
        `insert into booking_resources (booking_id, resource_id, organization_id, during, status)
         select $1, unnest($2::uuid[]), $3, tstzrange($4, $5, '[)'), 'confirmed'`,
        [booking.booking_id, body.resource_ids, organizationId, body.start_time, body.end_time],
      );
      await client.query('commit');
      return await reply.code(201).send(booking);
    } catch (error) {
      await client.query('rollback');
      throw error;
    } finally {
      client.release();
    }
  });
  return app;
}

async function currentWal(context: BenchContext): Promise<string> {
  const { rows } = await context.database.executeSql('select pg_current_wal_lsn()::text as lsn');
  return (rows[0] as { lsn: string }).lsn;
}

/**
 * WAL written since `before`: with pg_walinspect (a contrib extension; made here when the user may),
 * only the records touching this database's relations; otherwise the whole server's WAL.
 */
async function walSince(context: BenchContext, before: string): Promise<{ bytes: number; scope: string }> {
  try {
    await context.database.executeSql('create extension if not exists pg_walinspect');
    const { rows } = await context.database.executeSql(
      `select coalesce(sum(record_length), 0)::float8 as bytes
       from pg_get_wal_records_info($1::pg_lsn, pg_current_wal_lsn())
       where block_ref like '%/' || (select oid from pg_database where datname = current_database()) || '/%'`,
      [before],
    );
    return { bytes: (rows[0] as { bytes: number }).bytes, scope: "this database's records (pg_walinspect)" };
  } catch {
    const { rows } = await context.database.executeSql(
      'select pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8 as bytes',
      [before],
    );
    return { bytes: (rows[0] as { bytes: number }).bytes, scope: "the whole server's WAL" };
  }
}

/** POST /bookings of the real app, distinct 24/7-schedule slots, against the bare INSERT route. */
export async function benchBookings(context: BenchContext): Promise<BenchOutcome> {
  const { settings } = context;
  log(`bookings: ${RESOURCES} resources with 24/7 schedules, ${settings.connections} connections`);
  const resourceIds = await createResources(context.sched, RESOURCES, () => roundTheClock('UTC'));

  const pool = new pg.Pool({ connectionString: context.databaseUrl, max: context.poolSize });
  // Without a listener, an idle connection dropped by the server would end the process.
  pool.on('error', (error) => log(`bare pool: ${error.message}`));
  const bare = bareBookingServer(pool, context.sched.organizationId);
  try {
    const bareUrl = await listen(bare);
    // One sequence of slots for both sides: no request of either ever asks for a slot already taken.
    let nextIndex = 0;
    const firstSlotMs = dayAfterTomorrowUtc();
    const target = (headers: Record<string, string>): LoadTarget => ({
      kind: 'bookings',
      path: '/bookings',
      headers,
      resourceIds,
      firstSlotMs,
      slotMs: SLOT_MS,
      firstIndex: nextIndex,
    });
    const after = (result: LoadResult) => {
      nextIndex = Math.max(nextIndex, result.nextIndex);
    };

    // One request of each, alone, to count what it costs in round trips to PostgreSQL; then a run of
    // them one after another, to count the WAL a booking writes.
    const details: string[] = [];
    const problems: string[] = [];
    const sides = [
      ['sched', context.sched.app, { authorization: `Bearer ${context.sched.key}` }],
      ['bare', bare, {}],
    ] as const;
    const bookOne = async (app: FastifyInstance, headers: Record<string, string>) => {
      const n = nextIndex++;
      const start = firstSlotMs + Math.floor(n / resourceIds.length) * SLOT_MS;
      const response = await app.inject({
        method: 'POST',
        url: '/bookings',
        headers,
        payload: {
          resource_ids: [resourceIds[n % resourceIds.length]],
          start_time: new Date(start).toISOString(),
          end_time: new Date(start + SLOT_MS).toISOString(),
          title: 'Bench booking',
          attendees: [{ email: 'guest@example.com', name: 'Guest' }],
        },
      });
      return response.statusCode;
    };
    for (const [label, app, headers] of sides) {
      let status = 0;
      const statements = await recordStatements(async () => {
        status = await bookOne(app, headers);
      });
      if (status !== 201) problems.push(`bookings: a single ${label} POST /bookings answered ${status}`);
      details.push(
        `${label} POST /bookings: ${statements.length} statements: ${statements.map(statementSummary).join(', ')}`,
      );
    }
    const wal: string[] = [];
    for (const [label, app, headers] of sides) {
      const walBefore = await currentWal(context);
      for (let i = 0; i < WAL_BOOKINGS; i++) {
        const status = await bookOne(app, headers);
        if (status !== 201)
          problems.push(`bookings: a ${label} POST /bookings of the WAL run answered ${status}`);
      }
      const written = await walSince(context, walBefore);
      wal.push(`${label} ${(written.bytes / WAL_BOOKINGS).toFixed(0)} B (${written.scope})`);
    }
    details.push(`WAL per booking, ${WAL_BOOKINGS} bookings one after another: ${wal.join(', ')}`);
    const figures = await comparePair(
      context.load,
      settings,
      {
        ours: {
          label: 'sched',
          url: context.schedUrl,
          target: () => target({ authorization: `Bearer ${context.sched.key}` }),
          after,
        },
        baseline: { label: 'bare', url: bareUrl, target: () => target({}), after },
      },
      201,
    );
    return {
      rows: [
        {
          name: `POST /bookings on PostgreSQL, ${settings.connections} clients (201/s)`,
          ours: figures.ours.rate,
          baseline: figures.baseline.rate,
          unit: 'req/s',
          ratio: figures.ratio,
          aimKind: 'min',
          aim: 0.7,
          note:
            `pool ${context.poolSize} both sides; median latency ${figures.ours.medianLatencyMs.toFixed(1)} ms ` +
            `vs ${figures.baseline.medianLatencyMs.toFixed(1)} ms; server CPU per booking ` +
            `${figures.ours.cpuMsPerResponse.toFixed(2)} ms vs ${figures.baseline.cpuMsPerResponse.toFixed(2)} ms; ` +
            `${describeCycles(figures)}; ${nextIndex} slots used`,
        },
      ],
      problems: [...problems, ...figures.problems],
      details,
    };
  } finally {
    await bare.close();
    await pool.end();
  }
}
