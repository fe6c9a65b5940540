import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { childEnv, makeTempDir, REPO_ROOT } from '../support/spawn-server.js';

/** Runs `npm run emulators`' entry until it has printed its settings, then stops it. */
async function emulatorSettings(env: Record<string, string>): Promise<Map<string, string>> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/emulators/main.ts'], {
    cwd: REPO_ROOT,
    env: childEnv({ GOOGLE_EMULATOR_PORT: '0', GRAPH_EMULATOR_PORT: '0', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('SCHED_OUTLOOK_CLIENT_SECRET=')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`emulators exited with ${code}: ${err}`)));
    });
  } finally {
    child.kill('SIGTERM');
  }
  const settings = new Map<string, string>();
  for (const line of out.split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line);
    if (match) settings.set(match[1]!, match[2]!);
  }
  return settings;
}

describe('npm run emulators', { timeout: 60_000 }, () => {
  it('derives SCHED_PUBLIC_URL from the PORT and HOST the server will read', async () => {
    const settings = await emulatorSettings({ PORT: '3999' });
    expect(settings.get('SCHED_PUBLIC_URL')).toBe('http://127.0.0.1:3999');
    expect(settings.get('SCHED_OUTBOUND_ALLOW')).toBe('127.0.0.1/32');
    expect(settings.get('SCHED_GOOGLE_API_URL')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/calendar\/v3$/);
    expect(settings.get('SCHED_OUTLOOK_API_URL')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1\.0$/);
    expect((await emulatorSettings({ PORT: '4100', HOST: 'localhost' })).get('SCHED_PUBLIC_URL')).toBe(
      'http://localhost:4100',
    );
  });

  it('keeps a SCHED_PUBLIC_URL already set, and serves https with a certificate to trust when asked', async () => {
    const temp = makeTempDir('emulators');
    const caFile = path.join(temp.dir, 'ca.pem');
    let settings: Map<string, string>;
    try {
      settings = await emulatorSettings({
        SCHED_PUBLIC_URL: 'https://sched.example.com/',
        EMULATORS_TLS: '1',
        EMULATORS_CA_FILE: caFile,
      });
      expect(readFileSync(caFile, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    } finally {
      temp.remove();
    }
    expect(settings.get('SCHED_PUBLIC_URL')).toBe('https://sched.example.com');
    expect(settings.get('SCHED_GOOGLE_API_URL')).toMatch(/^https:\/\//);
    expect(settings.get('SCHED_OUTLOOK_TOKEN_URL')).toMatch(/^https:\/\//);
    expect(settings.get('NODE_EXTRA_CA_CERTS')).toBe(caFile);
  });
});
