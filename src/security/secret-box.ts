import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * The encryption keys a process holds, each under its version number. `current` seals; every key
 * opens what was sealed under its version, so a new key can be added and made current while values
 * sealed under the old one are still read (and re-sealed by `sched keys rotate`).
 */
export type Keyring = { keys: ReadonlyMap<number, Buffer>; current: number };

/** `v<key version>.` then the IV, tag and ciphertext; no JSON text or URL starts like this. */
const SEALED = /^v([1-9][0-9]*)\./;

/** The key version a sealed value names, or undefined when the text is not sealed. */
export function sealedKeyVersion(text: string): number | undefined {
  const match = SEALED.exec(text);
  return match ? Number(match[1]) : undefined;
}

/** The sealed form's first characters under one key version, for finding values sealed under others. */
export function sealedPrefix(version: number): string {
  return `v${version}.`;
}

/** A value sealed under a key version this process was not given. */
export class UnknownKeyVersionError extends Error {
  constructor(readonly version: number) {
    super(`the value is sealed under key version ${version}, which this process does not hold`);
    this.name = 'UnknownKeyVersionError';
  }
}

/**
 * AES-256-GCM for secrets that must be read back (webhook signing secrets and URLs, calendar
 * credentials, OAuth verifiers, stored idempotent responses). Stored as
 * `v<key version>.<iv>.<tag>.<ciphertext>` in base64url. Values written before key versions existed
 * are `v1.…`: the first key is version 1, so they open as they are.
 */
export class SecretBox {
  readonly #keys: ReadonlyMap<number, Buffer>;
  readonly #current: number;

  /** One key (version 1), or a keyring. */
  constructor(keys: Buffer | Keyring) {
    const ring: Keyring = Buffer.isBuffer(keys) ? { keys: new Map([[1, keys]]), current: 1 } : keys;
    for (const key of ring.keys.values()) {
      if (key.length !== 32) throw new Error('the encryption key must be 32 bytes');
    }
    if (!ring.keys.has(ring.current)) throw new Error(`no key of version ${ring.current}`);
    this.#keys = ring.keys;
    this.#current = ring.current;
  }

  /** The version new values are sealed under. */
  get currentVersion(): number {
    return this.#current;
  }

  /** Every version this box opens, in order. */
  get versions(): number[] {
    return [...this.#keys.keys()].sort((a, b) => a - b);
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(this.#current)!, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [`v${this.#current}`, iv, cipher.getAuthTag(), body]
      .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
      .join('.');
  }

  open(sealed: string): string {
    const version = sealedKeyVersion(sealed);
    const [, iv, tag, body, extra] = sealed.split('.');
    if (version === undefined || !iv || !tag || body === undefined || extra !== undefined) {
      throw new Error('not a sealed secret');
    }
    const key = this.#keys.get(version);
    if (!key) throw new UnknownKeyVersionError(version);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
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

/**
 * A stored value that may predate sealing: its text, or undefined when it is sealed under a key this
 * box does not hold (or does not open), or is plain text where `plainAllowed` is false.
 */
export function openStoredValue(box: SecretBox, stored: string, plainAllowed = true): string | undefined {
  if (sealedKeyVersion(stored) === undefined) return plainAllowed ? stored : undefined;
  try {
    return box.open(stored);
  } catch {
    return undefined;
  }
}

export class MissingEncryptionKeyError extends Error {
  constructor() {
    super(
      'SCHED_ENCRYPTION_KEY: is required with DATABASE_URL (or SCHED_ENCRYPTION_KEY_FILE, naming a file that ' +
        'holds it), so that every process encrypts and reads secrets with the same key. Create one with: ' +
        'openssl rand -base64 32',
    );
    this.name = 'MissingEncryptionKeyError';
  }
}
