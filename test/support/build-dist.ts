import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Builds dist/ as `npm ci` does (tsc -p tsconfig.build.json), so a test runs what `npm start` runs.
 * The global setup does it once per run; tests that start the built process rely on that.
 */
export async function buildDist(): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile(
      process.execPath,
      [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
      { cwd: REPO_ROOT, timeout: 180_000 },
      (error, stdout, stderr) => (error ? reject(new Error(`tsc failed: ${stdout}${stderr}`)) : resolve()),
    );
  });
}
