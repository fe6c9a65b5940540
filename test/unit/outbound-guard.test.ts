import { describe, expect, it } from 'vitest';
import {
  OutboundGuard,
  OutboundRefusedError,
  parseAllowList,
} from '../../src/integrations/http/outbound-guard.js';

const strict = new OutboundGuard({ allow: [] });

describe('outbound guard', () => {
  it.each([
    '127.0.0.1',
    '127.1.2.3',
    '10.0.0.5',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    'fc12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.1.2.3',
    '::ffff:a9fe:a9fe',
    '64:ff9b::7f00:1',
    '2002:7f00:1::',
  ])('refuses the internal address %s', (address) => {
    expect(strict.refusal(address)).toMatch(/internal address/);
  });

  it.each(['93.184.216.34', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:93.184.216.34'])(
    'allows the public address %s',
    (address) => {
      expect(strict.refusal(address)).toBeUndefined();
    },
  );

  it('lets the operator allow a range, and only that range', () => {
    const guard = new OutboundGuard({ allow: ['127.0.0.1/32', '10.1.0.0/16'] });
    expect(guard.refusal('127.0.0.1')).toBeUndefined();
    expect(guard.refusal('::ffff:127.0.0.1')).toBeUndefined();
    expect(guard.refusal('10.1.200.3')).toBeUndefined();
    expect(guard.refusal('127.0.0.2')).toMatch(/internal/);
    expect(guard.refusal('10.2.0.1')).toMatch(/internal/);
  });

  it('checks literal hosts, localhost and schemes in URLs before any connection', () => {
    expect(() => strict.checkUrl('https://127.0.0.1/hook', ['https'])).toThrow(OutboundRefusedError);
    expect(() => strict.checkUrl('https://[::ffff:7f00:1]/hook', ['https'])).toThrow(/internal/);
    expect(() => strict.checkUrl('https://localhost:8080/', ['https'])).toThrow(/loopback/);
    expect(() => strict.checkUrl('http://example.com/', ['https'])).toThrow(/only https/);
    expect(() => strict.checkUrl('file:///etc/passwd', ['https', 'http'])).toThrow(/only https or http/);
    expect(() => strict.checkUrl('not a url', ['https'])).toThrow(/not a valid URL/);
    expect(strict.checkUrl('https://example.com/x', ['https']).hostname).toBe('example.com');
  });

  it('refuses at lookup time a name that resolves to an internal address', async () => {
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      strict.lookup('localhost', { all: false }, (err) => resolve(err));
    });
    expect(error).toBeInstanceOf(OutboundRefusedError);
    expect(error?.code).toBe('EOUTBOUNDREFUSED');
  });

  it('parses SCHED_OUTBOUND_ALLOW and names a bad entry', () => {
    expect(parseAllowList('127.0.0.1/32, ::1/128,10.0.0.0/8')).toEqual({
      cidrs: ['127.0.0.1/32', '::1/128', '10.0.0.0/8'],
    });
    expect(parseAllowList('')).toEqual({ cidrs: [] });
    expect(parseAllowList('127.0.0.1/33')).toEqual({ error: expect.stringContaining('127.0.0.1/33') });
    expect(parseAllowList('example.com')).toEqual({ error: expect.stringContaining('example.com') });
  });
});
