import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const VERSION = 'v1';

/**
 * AES-256-GCM for secrets that must be read back (webhook signing secrets, calendar credentials).
 * Stored as `v1.<iv>.<tag>.<ciphertext>` in base64url; the version leaves room for key rotation.
 */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('the encryption key must be 32 bytes');
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv, cipher.getAuthTag(), body]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
  }

  open(sealed: string): string {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== VERSION || !iv || !tag || body === undefined) throw new Error('not a sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
      'utf8',
    );
  }

  /** A structured secret (calendar credentials) sealed as its JSON text. */
  sealJson(value: unknown): string {
    return this.seal(JSON.stringify(value));
  }

  openJson<T>(sealed: string): T {
    return JSON.parse(this.open(sealed)) as T;
  }
}

export class MissingEncryptionKeyError extends Error {
  constructor() {
    super(
      'SCHED_ENCRYPTION_KEY: is required with DATABASE_URL, so that every process encrypts and reads secrets ' +
        'with the same key. Create one with: openssl rand -base64 32',
    );
    this.name = 'MissingEncryptionKeyError';
  }
}

/**
 * The key comes from SCHED_ENCRYPTION_KEY. The embedded database, which only one process ever opens,
 * may instead keep a generated key beside its data (mode 0600); a shared PostgreSQL may not, since each
 * process would make its own.
 */
export function resolveEncryptionKey(options: {
  configured: Buffer | undefined;
  embeddedDataDir?: string;
}): Buffer {
  if (options.configured) return options.configured;
  if (!options.embeddedDataDir) throw new MissingEncryptionKeyError();
  const keyPath = path.join(options.embeddedDataDir, 'encryption.key');
  fs.mkdirSync(options.embeddedDataDir, { recursive: true });
  try {
    fs.writeFileSync(keyPath, randomBytes(32).toString('base64'), { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const key = Buffer.from(fs.readFileSync(keyPath, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`${keyPath} does not hold a 32-byte base64 key`);
  return key;
}
