import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** A key and a certificate for 127.0.0.1 and localhost, made for one emulator process and never stored. */
export type SelfSignedCertificate = { key: string; cert: string };

let made: SelfSignedCertificate | undefined;

/**
 * Makes a self-signed certificate with Debian's openssl (one per process, cached): an EC P-256 key,
 * valid for a day, with 127.0.0.1, ::1 and localhost as subject alternative names, so a client that
 * trusts `cert` as its CA verifies the emulator's address as it would a real service's.
 */
export function selfSignedCertificate(): SelfSignedCertificate {
  if (made) return made;
  const dir = mkdtempSync(path.join(tmpdir(), 'sched-emulator-tls-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=sched emulator',
        '-addext',
        'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
        '-keyout',
        keyFile,
        '-out',
        certFile,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    made = { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
    return made;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
