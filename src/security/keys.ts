import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type Keyring, MissingEncryptionKeyError } from './secret-box.js';

/**
 * Key material, as SCHED_ENCRYPTION_KEY, SCHED_ENCRYPTION_KEY_FILE and the embedded `encryption.key`
 * give it: one key alone (version 1), or entries `<version>:<key>` separated by commas or new lines,
 * where the highest version seals unless one entry is marked current with a leading `*`
 * (`*1:<old>,2:<new>`: version 2 opens but does not seal yet). A key is 32 bytes as 64 hex digits or
 * base64. Lines starting with `#` are comments. No message here repeats key material.
 */
export function parseKeyMaterial(text: string): { keyring: Keyring } | { error: string } {
  const entries = text
    .split(/[\r\n]+/)
    .filter((line) => !line.trim().startsWith('#'))
    .flatMap((line) => line.split(','))
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) return { error: 'holds no key' };
  if (entries.length === 1 && !entries[0]!.includes(':')) {
    const key = decodeKey(entries[0]!);
    return key ? { keyring: { keys: new Map([[1, key]]), current: 1 } } : { error: KEY_FORMAT };
  }
  const keys = new Map<number, Buffer>();
  let marked: number | undefined;
  for (const [index, entry] of entries.entries()) {
    const which = `entry ${index + 1} of ${entries.length}`;
    const match = /^(\*?)([0-9]+):(.*)$/.exec(entry);
    if (!match) {
      return { error: `${which} is not <version>:<key> (a key without a version is allowed only alone)` };
    }
    const [, star, digits, raw] = match as unknown as [string, string, string, string];
    const version = Number(digits);
    if (!/^[1-9][0-9]{0,5}$/.test(digits)) {
      return { error: `${which}: the version must be a whole number from 1 to 999999` };
    }
    if (keys.has(version)) return { error: `version ${version} is given twice` };
    const key = decodeKey(raw.trim());
    if (!key) return { error: `${which} (version ${version}): ${KEY_FORMAT}` };
    for (const [other, otherKey] of keys) {
      if (otherKey.equals(key)) return { error: `versions ${other} and ${version} hold the same key` };
    }
    if (star) {
      if (marked !== undefined) return { error: 'more than one entry is marked current with *' };
      marked = version;
    }
    keys.set(version, key);
  }
  return { keyring: { keys, current: marked ?? Math.max(...keys.keys()) } };
}

const KEY_FORMAT =
  'a key must be 32 random bytes as 64 hex digits or base64 (for example: openssl rand -base64 32)';

/** 32 bytes, given as 64 hex digits or as base64 (standard or URL-safe). */
function decodeKey(raw: string): Buffer | undefined {
  if (/^[0-9a-fA-F]{64}$/.test(raw)) return Buffer.from(raw, 'hex');
  if (!/^[A-Za-z0-9+/_-]+=*$/.test(raw)) return undefined;
  const key = Buffer.from(raw, 'base64');
  return key.length === 32 ? key : undefined;
}

/** A keyring as a key file holds it: one `<version>:<key>` a line, the highest version current. */
export function formatKeyFile(keyring: Keyring): string {
  const versions = [...keyring.keys.keys()].sort((a, b) => a - b);
  const current = keyring.current === Math.max(...versions) ? '' : '*';
  return [
    '# Sched encryption keys: <version>:<key> one a line. The highest version seals new values (or the',
    '# one marked with a leading *), and every version opens what was sealed under it.',
    '# See sched keys rotate --help.',
    ...versions.map(
      (version) =>
        `${version === keyring.current ? current : ''}${version}:${keyring.keys.get(version)!.toString('base64')}`,
    ),
    '',
  ].join('\n');
}

/** A key file that cannot be used, said with its path (never its content). */
export class EncryptionKeyFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncryptionKeyFileError';
  }
}

export type KeyFile = {
  path: string;
  keyring: Keyring;
  /** Whether users other than the owner may read it (group or others have read permission). */
  readableByOthers: boolean;
};

/** Reads and validates a key file; a problem is an error message naming the path. */
export function readKeyFile(file: string): KeyFile | { error: string } {
  let text: string;
  let mode: number;
  try {
    text = fs.readFileSync(file, 'utf8');
    mode = fs.statSync(file).mode;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    return { error: `cannot read ${file} (${code})` };
  }
  const parsed = parseKeyMaterial(text);
  if ('error' in parsed) return { error: `${file}: ${parsed.error}` };
  return { path: file, keyring: parsed.keyring, readableByOthers: (mode & 0o044) !== 0 };
}

/** The keys the configuration gives: inline in SCHED_ENCRYPTION_KEY, or in SCHED_ENCRYPTION_KEY_FILE. */
export type ConfiguredKeys =
  { source: 'SCHED_ENCRYPTION_KEY'; keyring: Keyring } | ({ source: 'SCHED_ENCRYPTION_KEY_FILE' } & KeyFile);

export type ResolvedKeys = {
  keyring: Keyring;
  /**
   * The file `sched keys rotate` adds a new key version to: the embedded database's key file
   * (`encryption.key`, or SCHED_ENCRYPTION_KEY_FILE). Undefined where the operator hands every process
   * its keys (SCHED_ENCRYPTION_KEY, or DATABASE_URL: a new key must reach every process first).
   */
  managedFile: string | undefined;
  warnings: string[];
};

function openFileWarning(file: KeyFile, what: string): string[] {
  return file.readableByOthers
    ? [`${what} ${file.path} can be read by other users of this machine; restrict it with chmod 600`]
    : [];
}

/**
 * The keys come from SCHED_ENCRYPTION_KEY or SCHED_ENCRYPTION_KEY_FILE. The embedded database, which
 * only one process ever opens, may instead keep a generated key beside its data (mode 0600); a shared
 * PostgreSQL may not, since each process would make its own.
 */
export function resolveEncryptionKey(options: {
  configured: ConfiguredKeys | undefined;
  embeddedDataDir?: string;
}): ResolvedKeys {
  const { configured, embeddedDataDir } = options;
  if (configured?.source === 'SCHED_ENCRYPTION_KEY') {
    return { keyring: configured.keyring, managedFile: undefined, warnings: [] };
  }
  if (configured) {
    return {
      keyring: configured.keyring,
      managedFile: embeddedDataDir ? configured.path : undefined,
      warnings: openFileWarning(configured, 'SCHED_ENCRYPTION_KEY_FILE'),
    };
  }
  if (!embeddedDataDir) throw new MissingEncryptionKeyError();
  const keyPath = path.join(embeddedDataDir, 'encryption.key');
  fs.mkdirSync(embeddedDataDir, { recursive: true });
  try {
    fs.writeFileSync(keyPath, randomBytes(32).toString('base64'), { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const file = readKeyFile(keyPath);
  if ('error' in file) throw new EncryptionKeyFileError(file.error);
  return { keyring: file.keyring, managedFile: keyPath, warnings: openFileWarning(file, 'The key file') };
}

/**
 * Writes a keyring over a key file as one step (a new file renamed over the old, mode 0600), so a
 * crash leaves either the old keys or the new ones, never half a file.
 */
export function writeKeyFile(file: string, keyring: Keyring): void {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const handle = fs.openSync(temporary, 'w', 0o600);
    try {
      fs.writeFileSync(handle, formatKeyFile(keyring));
      fs.fsyncSync(handle);
    } finally {
      fs.closeSync(handle);
    }
    fs.renameSync(temporary, file);
  } catch (error) {
    fs.rmSync(temporary, { force: true });
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new EncryptionKeyFileError(`cannot write ${file} (${code}); the keys in it are unchanged`);
  }
}

/** The keyring with a new random key under the next version, made current. */
export function withNewKey(keyring: Keyring): Keyring {
  const version = Math.max(...keyring.keys.keys()) + 1;
  return { keys: new Map([...keyring.keys, [version, randomBytes(32)]]), current: version };
}

/** The keyring with only its current key. */
export function onlyCurrent(keyring: Keyring): Keyring {
  return { keys: new Map([[keyring.current, keyring.keys.get(keyring.current)!]]), current: keyring.current };
}
