import { describeStatuses, type LoadGenerator, rateOf, unexpectedOf } from './load.js';
import type { LoadResult, LoadTarget } from './load-protocol.js';
import { log, median, type Settings } from './support.js';

/** Each measured run lasts this long; the first fifth of it is ramp-up and is not counted. */
export const SLICE_SECONDS = 2;
const SKIP_SECONDS = SLICE_SECONDS / 5;

export type LoadSide = {
  label: string;
  url: string;
  /** The target of the next run; called once per run, so a target can carry state (booking slots). */
  target(): LoadTarget;
  /** Sees every result, warm-up included. */
  after?(result: LoadResult): void;
  /**
   * Awaited before each run: where the server goes on working on the requests of the run before
   * (cut off mid-flight when it ended), until it is done, so that work is not counted in this run.
   */
  settle?(): Promise<void>;
};

export type SideFigure = {
  /** Responses with the expected status per second, over the steady-state windows of every cycle. */
  rate: number;
  medianLatencyMs: number;
  /**
   * CPU time of this process (where both servers run; the load generator has its own) per expected
   * response, in ms: what a request costs the server's event loop and its database driver.
   */
  cpuMsPerResponse: number;
};

export type PairFigures = {
  ours: SideFigure;
  baseline: SideFigure;
  /** ours / baseline of each ABBA cycle. */
  cycleRatios: number[];
  /** The median of cycleRatios: the figure the aim is judged on. */
  ratio: number;
  problems: string[];
};

/**
 * Throughput of two servers under the same load, in ABBA cycles (ours, baseline, baseline, ours) of
 * short runs after a warm-up of each. A burst of other work on the shared machine then lands on both
 * sides of a cycle alike, and the median over cycles ignores a cycle it spoiled anyway.
 */
export async function comparePair(
  load: LoadGenerator,
  settings: Settings,
  sides: { ours: LoadSide; baseline: LoadSide },
  expectedStatus: number,
): Promise<PairFigures> {
  const problems: string[] = [];
  const cpuMs: Record<string, number> = {};
  const runSide = async (side: LoadSide, seconds: number, phase: string) => {
    await side.settle?.();
    const cpuBefore = process.cpuUsage();
    const result = await load.run({
      url: side.url,
      connections: settings.connections,
      durationSeconds: seconds,
      skipSeconds: Math.min(SKIP_SECONDS, seconds / 5),
      target: side.target(),
    });
    const cpuUsed = process.cpuUsage(cpuBefore);
    if (phase !== 'warm-up')
      cpuMs[side.label] = (cpuMs[side.label] ?? 0) + (cpuUsed.user + cpuUsed.system) / 1000;
    side.after?.(result);
    const unexpected = unexpectedOf(result, expectedStatus);
    log(
      `  ${side.label} ${phase}: ${rateOf(result, expectedStatus).toFixed(0)}/s (${describeStatuses(result)})`,
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
  const cycles = Math.max(1, Math.round(settings.loadSeconds / (2 * SLICE_SECONDS)));
  const measured: Record<'ours' | 'baseline', LoadResult[]> = { ours: [], baseline: [] };
  const cycleRatios: number[] = [];
  const rateOver = (results: LoadResult[]) =>
    results.reduce((sum, r) => sum + (r.windowStatuses[String(expectedStatus)] ?? 0), 0) /
    results.reduce((sum, r) => sum + r.windowSeconds, 0);
  for (let cycle = 1; cycle <= cycles; cycle++) {
    const runs: Record<'ours' | 'baseline', LoadResult[]> = { ours: [], baseline: [] };
    for (const which of ['ours', 'baseline', 'baseline', 'ours'] as const) {
      runs[which].push(await runSide(sides[which], SLICE_SECONDS, `cycle ${cycle}/${cycles}`));
    }
    cycleRatios.push(rateOver(runs.ours) / rateOver(runs.baseline));
    measured.ours.push(...runs.ours);
    measured.baseline.push(...runs.baseline);
  }
  const figureOf = (side: LoadSide, results: LoadResult[]): SideFigure => {
    const expected = results.reduce((sum, r) => sum + (r.statuses[String(expectedStatus)] ?? 0), 0);
    return {
      rate: rateOver(results),
      medianLatencyMs: median(results.map((r) => r.latencyMedianMs)),
      cpuMsPerResponse: (cpuMs[side.label] ?? 0) / Math.max(1, expected),
    };
  };
  return {
    ours: figureOf(sides.ours, measured.ours),
    baseline: figureOf(sides.baseline, measured.baseline),
    cycleRatios,
    ratio: median(cycleRatios),
    problems,
  };
}

export function describeCycles(figures: PairFigures): string {
  return `ratio per ABBA cycle ${figures.cycleRatios.map((ratio) => ratio.toFixed(2)).join(', ')}`;
}
