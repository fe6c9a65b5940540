import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createDependencies, type Dependencies } from '../../src/dependencies.js';
import { MissingEncryptionKeyError, SecretBox } from '../../src/security/secret-box.js';
import { backends } from '../support/backends.js';
import { makeTempDir, runCli } from '../support/spawn-server.js';

/** No provider that warns about push without SCHED_PUBLIC_URL: the warnings checked are the key's. */
const QUIET = { LOG_LEVEL: 'silent', SCHED_CALENDAR_PROVIDERS: 'caldav,ics' };

const pglite = backends.find((backend) => backend.name === 'pglite')!;

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('the configuration was accepted');
}

describe('SCHED_ENCRYPTION_KEY_FILE', () => {
  const cleanups: (() => void)[] = [];
  const opened: Dependencies[] = [];
  afterEach(async () => {
    for (const deps of opened.splice(0)) await deps.close();
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  function tempDir(label: string): string {
    const temp = makeTempDir(label);
    cleanups.push(temp.remove);
    return temp.dir;
  }

  /** A key file away from the data, as an operator would keep it. */
  function keyFile(content: string, mode = 0o600): string {
    const file = path.join(tempDir('keyfile'), 'sched.key');
    fs.writeFileSync(file, content, { mode });
    fs.chmodSync(file, mode);
    return file;
  }

  it('is refused beside SCHED_ENCRYPTION_KEY, naming both', () => {
    const error = configError({
      SCHED_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      SCHED_ENCRYPTION_KEY_FILE: keyFile(randomBytes(32).toString('base64')),
    });
    expect(error.variable).toBe('SCHED_ENCRYPTION_KEY_FILE');
    expect(error.message).toContain('SCHED_ENCRYPTION_KEY_FILE');
    expect(error.message).toContain(' SCHED_ENCRYPTION_KEY;');
  });

  it('is refused when it cannot be read or holds no valid key, without repeating its content', () => {
    const missing = configError({ SCHED_ENCRYPTION_KEY_FILE: '/nonexistent/sched.key' });
    expect(missing.variable).toBe('SCHED_ENCRYPTION_KEY_FILE');
    expect(missing.message).toContain('/nonexistent/sched.key (ENOENT)');
    const garbage = 'not-a-key-but-a-secret-looking-text';
    const malformed = configError({ SCHED_ENCRYPTION_KEY_FILE: keyFile(garbage) });
    expect(malformed.variable).toBe('SCHED_ENCRYPTION_KEY_FILE');
    expect(malformed.message).toMatch(/32 random bytes/);
    expect(malformed.message).not.toContain(garbage);
    const directory = configError({ SCHED_ENCRYPTION_KEY_FILE: tempDir('keydir') });
    expect(directory.message).toContain('EISDIR');
  });

  it('serves the embedded database with the key from the file, and no encryption.key is made beside the data', async () => {
    const key = randomBytes(32);
    const file = keyFile(`${key.toString('base64')}\n`);
    const dataDir = tempDir('keyfile-data');
    const deps = await createDependencies(
      loadConfig({ SCHED_DATA_DIR: dataDir, SCHED_ENCRYPTION_KEY_FILE: file, ...QUIET }),
      { database: await pglite.open(), processMetrics: false },
    );
    opened.push(deps);
    expect(deps.warnings).toEqual([]);
    expect(new SecretBox(key).open(deps.secretBox.seal('sealed with the file'))).toBe('sealed with the file');
    expect(fs.existsSync(path.join(dataDir, 'encryption.key'))).toBe(false);
    await deps.database.close();
  });

  it('satisfies the key DATABASE_URL requires; without any key that is refused', async () => {
    const key = randomBytes(32);
    const env = { DATABASE_URL: 'postgres://sched@127.0.0.1:5432/unused', LOG_LEVEL: 'silent' };
    const deps = await createDependencies(
      loadConfig({ ...env, SCHED_ENCRYPTION_KEY_FILE: keyFile(key.toString('hex')) }),
      { database: await pglite.open(), processMetrics: false },
    );
    opened.push(deps);
    expect(new SecretBox(key).open(deps.secretBox.seal('x'))).toBe('x');
    await deps.database.close();
    await expect(
      createDependencies(loadConfig(env), { database: await pglite.open(), processMetrics: false }),
    ).rejects.toBeInstanceOf(MissingEncryptionKeyError);
  });

  it('warns at start when the file can be read by other users', async () => {
    const file = keyFile(randomBytes(32).toString('base64'), 0o644);
    const deps = await createDependencies(
      loadConfig({ SCHED_DATA_DIR: tempDir('open-key'), SCHED_ENCRYPTION_KEY_FILE: file, ...QUIET }),
      { database: await pglite.open(), processMetrics: false },
    );
    opened.push(deps);
    expect(deps.warnings).toEqual([
      `SCHED_ENCRYPTION_KEY_FILE ${file} can be read by other users of this machine; restrict it with chmod 600`,
    ]);
    await deps.database.close();
  });

  it('sched serve with a key file it cannot use stops at once, naming SCHED_ENCRYPTION_KEY_FILE, no stack', async () => {
    const dataDir = tempDir('serve-keyfile');
    const result = await runCli(['serve'], {
      SCHED_DATA_DIR: dataDir,
      PORT: '0',
      SCHED_ENCRYPTION_KEY_FILE: keyFile('1:abc'),
    });
    expect(result.code).toBe(1);
    expect(result.stderr.split('\n')[0]).toContain('SCHED_ENCRYPTION_KEY_FILE');
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(fs.readdirSync(dataDir)).toEqual([]);
  });
});
