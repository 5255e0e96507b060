// A throwaway CA and a 127.0.0.1 server certificate made with openssl, so tests verify TLS for real.
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificates {
  caCertPath: string;
  caCertPem: string;
  serverCertPath: string;
  /** Mode 0600: Samba refuses a world-readable key. */
  serverKeyPath: string;
}

/** Creates `dir` with a CA (2 days) and a server certificate for IP:127.0.0.1 and DNS:localhost. */
export async function createTestCertificates(
  dir: string,
  commonName = 'bdevault test CA',
): Promise<TestCertificates> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const p = (name: string) => join(dir, name);
  const openssl = (args: string[]) => run('openssl', args, { timeout: 60_000 });
  await openssl([
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-subj', `/CN=${commonName}`, '-keyout', p('ca.key'), '-out', p('ca.pem'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]); // prettier-ignore
  await openssl([
    'req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-subj', '/CN=127.0.0.1',
    '-keyout', p('server.key'), '-out', p('server.csr'),
  ]); // prettier-ignore
  await writeFile(
    p('server.ext'),
    [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  await openssl([
    'x509', '-req', '-sha256', '-days', '2', '-in', p('server.csr'), '-CA', p('ca.pem'),
    '-CAkey', p('ca.key'), '-CAcreateserial', '-extfile', p('server.ext'), '-out', p('server.pem'),
  ]); // prettier-ignore
  await chmod(p('server.key'), 0o600);
  await chmod(p('ca.key'), 0o600);
  return {
    caCertPath: p('ca.pem'),
    caCertPem: await readFile(p('ca.pem'), 'utf8'),
    serverCertPath: p('server.pem'),
    serverKeyPath: p('server.key'),
  };
}
