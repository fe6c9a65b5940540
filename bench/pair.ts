import { describeStatuses, type LoadGenerator, rateOf, unexpectedOf } from './load.js';
import type { LoadResult, LoadTarget } from './load-protocol.js';
import { log, type Settings } from './support.js';

export type LoadSide = {
  label: string;
  url: string;
  /** The target of the next run; called once per run, so a target can carry state (booking slots). */
  target(): LoadTarget;
  /** Sees every result, warm-up included. */
  after?(result: LoadResult): void;
};

export type SideFigure = {
  /** Responses with the expected status per second, over the measured rounds. */
  rate: number;
  medianLatencyMs: number;
  unexpected: number;
  statuses: string;
};

export type PairFigures = { ours: SideFigure; baseline: SideFigure; problems: string[] };

/**
 * Throughput of two servers under the same load, measured ABBA (ours, baseline, baseline, ours) after
 * a warm-up of each, so a drift of the shared machine over the pair weighs on both sides alike.
 */
export async function comparePair(
  load: LoadGenerator,
  settings: Settings,
  sides: { ours: LoadSide; baseline: LoadSide },
  expectedStatus: number,
): Promise<PairFigures> {
  const problems: string[] = [];
  const runSide = async (side: LoadSide, seconds: number, phase: string) => {
    const result = await load.run({
      url: side.url,
      connections: settings.connections,
      durationSeconds: seconds,
      target: side.target(),
    });
    side.after?.(result);
    const unexpected = unexpectedOf(result, expectedStatus);
    log(
      `  ${side.label} ${phase} ${seconds}s: ${rateOf(result, expectedStatus).toFixed(0)}/s (${describeStatuses(result)})`,
    );
    if (unexpected > 0) {
      problems.push(
        `${side.label} (${phase}): ${unexpected} responses other than ${expectedStatus}: ${describeStatuses(result)}`,
      );
    }
    return result;
  };

  if (settings.warmupSeconds > 0) {
    await runSide(sides.ours, settings.warmupSeconds, 'warm-up');
    await runSide(sides.baseline, settings.warmupSeconds, 'warm-up');
  }
  const half = Math.max(1, Math.round(settings.loadSeconds / 2));
  const measured: Record<'ours' | 'baseline', LoadResult[]> = { ours: [], baseline: [] };
  for (const which of ['ours', 'baseline', 'baseline', 'ours'] as const) {
    measured[which].push(await runSide(sides[which], half, 'measured'));
  }
  const figureOf = (results: LoadResult[]): SideFigure => {
    const seconds = results.reduce((sum, r) => sum + r.durationSeconds, 0);
    const expected = results.reduce((sum, r) => sum + (r.statuses[String(expectedStatus)] ?? 0), 0);
    return {
      rate: expected / seconds,
      medianLatencyMs: results.reduce((sum, r) => sum + r.latencyMedianMs, 0) / results.length,
      unexpected: results.reduce((sum, r) => sum + unexpectedOf(r, expectedStatus), 0),
      statuses: results.map(describeStatuses).join('; '),
    };
  };
  return { ours: figureOf(measured.ours), baseline: figureOf(measured.baseline), problems };
}
