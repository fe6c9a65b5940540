import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { formatKeyFile, parseKeyMaterial, withNewKey } from '../../src/security/keys.js';
import {
  type Keyring,
  SecretBox,
  sealedKeyVersion,
  UnknownKeyVersionError,
} from '../../src/security/secret-box.js';

const k1 = randomBytes(32);
const k2 = randomBytes(32);

function parsed(text: string): Keyring {
  const result = parseKeyMaterial(text);
  if ('error' in result) throw new Error(result.error);
  return result.keyring;
}

function refusal(text: string): string {
  const result = parseKeyMaterial(text);
  if (!('error' in result)) throw new Error(`accepted: ${text}`);
  return result.error;
}

/** A value as the box sealed it before key versions: `v1.` with the one key. */
function sealedTheOldWay(key: Buffer, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), body]
    .map((p) => (typeof p === 'string' ? p : p.toString('base64url')))
    .join('.');
}

describe('key material', () => {
  it('reads one key alone, hex or base64, as version 1, as before', () => {
    for (const text of [k1.toString('base64'), k1.toString('hex'), `${k1.toString('base64url')}\n`]) {
      const ring = parsed(text);
      expect(ring.current).toBe(1);
      expect([...ring.keys]).toEqual([[1, k1]]);
    }
  });

  it('reads versioned keys by commas or lines; the highest seals unless one is marked with *', () => {
    const both = parsed(`1:${k1.toString('base64')},2:${k2.toString('hex')}`);
    expect(both.current).toBe(2);
    expect(both.keys.get(1)).toEqual(k1);
    expect(both.keys.get(2)).toEqual(k2);
    const staged = parsed(`# keys\n*1:${k1.toString('base64')}\n\n2:${k2.toString('base64')}\n`);
    expect(staged.current).toBe(1);
    expect(staged.keys.size).toBe(2);
    expect(parsed(`7:${k2.toString('base64')}`).current).toBe(7);
  });

  it('refuses malformed material without repeating any key', () => {
    const cases: [string, RegExp][] = [
      ['', /no key/],
      ['short', /32 random bytes/],
      [`${k1.toString('base64')},${k2.toString('base64')}`, /without a version is allowed only alone/],
      [`1:${k1.toString('base64')},1:${k2.toString('base64')}`, /version 1 is given twice/],
      [`0:${k1.toString('base64')}`, /from 1 to 999999/],
      [`01:${k1.toString('base64')}`, /from 1 to 999999/],
      [`1:${k1.toString('base64')},2:${k1.toString('hex')}`, /versions 1 and 2 hold the same key/],
      [`*1:${k1.toString('base64')},*2:${k2.toString('base64')}`, /more than one/],
      [`1:${k1.toString('base64').slice(4)}`, /version 1\): a key must be 32 random bytes/],
    ];
    for (const [text, message] of cases) {
      const error = refusal(text);
      expect(error, text).toMatch(message);
      expect(error).not.toContain(k1.toString('base64').slice(8, 30));
      expect(error).not.toContain(k2.toString('base64').slice(8, 30));
    }
  });

  it('writes a key file that reads back as the same keyring, marking a current that is not the highest', () => {
    const grown = withNewKey(parsed(k1.toString('base64')));
    expect(grown.current).toBe(2);
    expect(parsed(formatKeyFile(grown))).toEqual(grown);
    const staged: Keyring = { keys: grown.keys, current: 1 };
    expect(formatKeyFile(staged)).toMatch(/^\*1:/m);
    expect(parsed(formatKeyFile(staged))).toEqual(staged);
  });
});

describe('SecretBox with key versions', () => {
  it('opens values sealed before key versions existed as version 1', () => {
    const old = sealedTheOldWay(k1, 'whsec_old');
    expect(sealedKeyVersion(old)).toBe(1);
    expect(new SecretBox(k1).open(old)).toBe('whsec_old');
    expect(
      new SecretBox({
        keys: new Map([
          [1, k1],
          [2, k2],
        ]),
        current: 2,
      }).open(old),
    ).toBe('whsec_old');
  });

  it('seals under the current version and opens every version it holds', () => {
    const ring = new SecretBox({
      keys: new Map([
        [1, k1],
        [2, k2],
      ]),
      current: 2,
    });
    const sealed = ring.seal('secret');
    expect(sealed).toMatch(/^v2\./);
    expect(ring.open(sealed)).toBe('secret');
    expect(new SecretBox({ keys: new Map([[2, k2]]), current: 2 }).open(sealed)).toBe('secret');
    expect(() => new SecretBox(k1).open(sealed)).toThrow(UnknownKeyVersionError);
    // The same key under another version number is another key: the version is part of the name.
    expect(() => new SecretBox({ keys: new Map([[3, k2]]), current: 3 }).open(sealed)).toThrow(
      /key version 2/,
    );
  });

  it('tells sealed text from JSON and URLs', () => {
    expect(sealedKeyVersion('{"key":"v1.x"}')).toBeUndefined();
    expect(sealedKeyVersion('https://example.com/?v1.x')).toBeUndefined();
    expect(sealedKeyVersion('v12.a.b.c')).toBe(12);
    expect(sealedKeyVersion('v0.a.b.c')).toBeUndefined();
  });
});
