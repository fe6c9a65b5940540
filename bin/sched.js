#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
if (!existsSync(entry)) {
  process.stderr.write('sched: the build is missing; run "npm ci" (or "npm run build") first.\n');
  process.exit(1);
}
await import(entry);
