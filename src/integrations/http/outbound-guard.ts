import { lookup as dnsLookup } from 'node:dns';
import { lookup as dnsLookupAll } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { Agent } from 'undici';

/**
 * Addresses a user-given URL may never reach unless the operator allows them: loopback, private,
 * link-local, shared, multicast, reserved and documentation ranges. Node's BlockList also matches the
 * IPv4-mapped IPv6 forms (::ffff:127.0.0.1) of the IPv4 ranges.
 */
const FORBIDDEN: readonly [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.0.2.0', 24, 'ipv4'],
  ['192.88.99.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['198.51.100.0', 24, 'ipv4'],
  ['203.0.113.0', 24, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'],
  ['240.0.0.0', 4, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['::', 96, 'ipv6'], // IPv4-compatible (deprecated) addresses
  ['64:ff9b::', 96, 'ipv6'], // NAT64: reaches whatever IPv4 address it embeds
  ['64:ff9b:1::', 48, 'ipv6'],
  ['100::', 64, 'ipv6'],
  ['2001:db8::', 32, 'ipv6'],
  ['2002::', 16, 'ipv6'], // 6to4: embeds an IPv4 address
  ['fc00::', 7, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['fec0::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
];

export class OutboundRefusedError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`refused to connect to ${url}: ${reason}`);
    this.name = 'OutboundRefusedError';
  }
}

export type OutboundPolicy = {
  /** CIDRs the operator allows despite the rules above (SCHED_OUTBOUND_ALLOW). */
  allow: readonly string[];
};

function toBlockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [address, bits] = cidr.split('/');
    const family = isIP(address ?? '');
    if (!address || family === 0) throw new Error(`not a CIDR: ${cidr}`);
    const prefix = bits === undefined ? (family === 4 ? 32 : 128) : Number(bits);
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/** Parses SCHED_OUTBOUND_ALLOW; returns the first bad entry's message instead of throwing. */
export function parseAllowList(raw: string | undefined): { cidrs: string[] } | { error: string } {
  const cidrs = (raw ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  for (const cidr of cidrs) {
    const [address, bits, extra] = cidr.split('/');
    const family = isIP(address ?? '');
    const max = family === 4 ? 32 : 128;
    if (
      family === 0 ||
      extra !== undefined ||
      (bits !== undefined && !/^\d+$/.test(bits)) ||
      Number(bits ?? max) > max
    ) {
      return { error: `"${cidr}" is not a CIDR such as 203.0.113.0/24 or 127.0.0.1/32` };
    }
  }
  return { cidrs };
}

export class OutboundGuard {
  readonly #forbidden = toBlockList([]);
  readonly #allowed: BlockList;

  constructor(policy: OutboundPolicy) {
    for (const [address, prefix, family] of FORBIDDEN) this.#forbidden.addSubnet(address, prefix, family);
    this.#allowed = toBlockList(policy.allow);
  }

  /** Whether the operator's allow list names this address. */
  allows(address: string): boolean {
    const family = isIP(address);
    return family !== 0 && this.#allowed.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }

  /** Why this address may not be reached, or undefined when it may. */
  refusal(address: string): string | undefined {
    const family = isIP(address);
    if (family === 0) return `"${address}" is not an IP address`;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.#allowed.check(address, type)) return undefined;
    if (this.#forbidden.check(address, type)) {
      return `${address} is a loopback, private, link-local or otherwise internal address`;
    }
    return undefined;
  }

  /**
   * A DNS lookup that refuses forbidden answers. Used at connect time, so the address checked is the
   * address connected to: a name that resolves differently on a second lookup cannot slip past.
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const list = addresses as unknown as { address: string; family: number }[];
      for (const entry of list) {
        const reason = this.refusal(entry.address);
        if (reason) {
          const refused = new OutboundRefusedError(hostname, reason) as NodeJS.ErrnoException;
          refused.code = 'EOUTBOUNDREFUSED';
          return callback(refused, '', 0);
        }
      }
      if (options.all) return callback(null, list);
      const first = list[0];
      if (!first) return callback(new Error(`no address for ${hostname}`), '', 0);
      return callback(null, first.address, first.family);
    });
  };

  /** Checks what can be checked before connecting: scheme, credentials in the URL, literal addresses. */
  checkUrl(raw: string, schemes: readonly string[]): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new OutboundRefusedError(raw, 'it is not a valid URL');
    }
    if (!schemes.includes(url.protocol.slice(0, -1))) {
      throw new OutboundRefusedError(raw, `only ${schemes.join(' or ')} URLs are allowed`);
    }
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    if (isIP(host)) {
      const reason = this.refusal(host);
      if (reason) throw new OutboundRefusedError(raw, reason);
    } else if (host === 'localhost' || host.endsWith('.localhost')) {
      const reason = this.refusal('127.0.0.1');
      if (reason) throw new OutboundRefusedError(raw, 'localhost is a loopback name');
    }
    return url;
  }

  /**
   * Checks a URL as far as can be known now: scheme, literal addresses, and the addresses its name
   * resolves to today. Plain http is accepted only towards addresses the operator allows. A name
   * that does not resolve yet passes; every connection is checked again by the agent.
   */
  async checkUrlResolved(raw: string, options: { httpOnlyIfAllowed: boolean }): Promise<URL> {
    const url = this.checkUrl(raw, ['https', 'http']);
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    let addresses: string[];
    try {
      addresses = isIP(host)
        ? [host]
        : (await dnsLookupAll(host, { all: true })).map((entry) => entry.address);
    } catch {
      addresses = [];
    }
    for (const address of addresses) {
      const reason = this.refusal(address);
      if (reason) throw new OutboundRefusedError(raw, reason);
    }
    if (url.protocol === 'http:' && options.httpOnlyIfAllowed) {
      if (addresses.length === 0 || !addresses.every((address) => this.allows(address))) {
        throw new OutboundRefusedError(
          raw,
          'only https URLs are allowed, except towards addresses in SCHED_OUTBOUND_ALLOW',
        );
      }
    }
    return url;
  }

  /**
   * An HTTP agent whose connections resolve names through the guarded lookup. Literal addresses skip
   * DNS, which is why every URL also goes through checkUrl first. It keeps a pool of keep-alive
   * connections per origin: at most `connectionsPerOrigin` (unbounded when left out), each closed
   * after `idleTimeoutMs` unused (or sooner when the server says so). A connection reused is one
   * whose address was checked when it was made.
   */
  agent(
    options: { connectTimeoutMs?: number; connectionsPerOrigin?: number; idleTimeoutMs?: number } = {},
  ): Agent {
    return new Agent({
      connect: { lookup: this.lookup, timeout: options.connectTimeoutMs ?? 5000 },
      ...(options.connectionsPerOrigin === undefined ? {} : { connections: options.connectionsPerOrigin }),
      ...(options.idleTimeoutMs === undefined ? {} : { keepAliveTimeout: options.idleTimeoutMs }),
    });
  }
}
