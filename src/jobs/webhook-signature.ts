import { createHmac } from 'node:crypto';

/** The HMAC key of a `whsec_` secret: its base64 part, decoded. */
export function webhookSigningKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

/**
 * Standard Webhooks: HMAC-SHA256 over `${id}.${timestamp}.${body}` keyed with the base64 part of the
 * `whsec_` secret (see webhookSigningKey); the header lists `v1,<base64>` signatures separated by
 * spaces, one per valid secret.
 */
export function signWebhook(key: Buffer, messageId: string, timestampSeconds: number, body: Buffer): string {
  const mac = createHmac('sha256', key)
    .update(`${messageId}.${timestampSeconds}.`)
    .update(body)
    .digest('base64');
  return `v1,${mac}`;
}
