import Fastify from 'fastify';
import type { BenchContext, BenchOutcome } from './context.js';
import { comparePair, describeCycles } from './pair.js';
import { listen, log } from './support.js';

/** GET /healthz of the real app against a bare Fastify route answering the same body. */
export async function benchHealthz(context: BenchContext): Promise<BenchOutcome> {
  log('healthz: GET /healthz against a bare Fastify hello route');
  const bare = Fastify({ logger: false });
  bare.get('/healthz', async () => ({ status: 'ok' }));
  const bareUrl = await listen(bare);
  try {
    const figures = await comparePair(
      context.load,
      context.settings,
      {
        ours: { label: 'sched', url: context.schedUrl, target: () => ({ kind: 'get', path: '/healthz' }) },
        baseline: { label: 'bare', url: bareUrl, target: () => ({ kind: 'get', path: '/healthz' }) },
      },
      200,
    );
    return {
      rows: [
        {
          name: `GET /healthz, ${context.settings.connections} connections (req/s)`,
          ours: figures.ours.rate,
          baseline: figures.baseline.rate,
          unit: 'req/s',
          ratio: figures.ratio,
          aimKind: 'min',
          aim: 0.8,
          note:
            `median latency ${figures.ours.medianLatencyMs.toFixed(1)} ms vs ${figures.baseline.medianLatencyMs.toFixed(1)} ms; ` +
            `server CPU per request ${(figures.ours.cpuMsPerResponse * 1000).toFixed(0)} µs vs ` +
            `${(figures.baseline.cpuMsPerResponse * 1000).toFixed(0)} µs; ${describeCycles(figures)}`,
        },
      ],
      problems: figures.problems,
    };
  } finally {
    await bare.close();
  }
}
