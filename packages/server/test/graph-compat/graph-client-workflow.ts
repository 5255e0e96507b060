// Child process for the acceptance test: the real Microsoft Graph JS client runs Get-EntraBitLockerKeys.
// It is started with NODE_EXTRA_CA_CERTS (read once at process start) so the test CA is trusted.
import { Client, GraphError, PageIterator } from '@microsoft/microsoft-graph-client';

const baseUrl = process.env.GRAPH_BASE_URL!;
const token = process.env.GRAPH_TOKEN!;
const deviceName = process.env.GRAPH_DEVICE_NAME!;

// Record what the client actually sends (URL and whether it attached the token).
const requests: { url: string; authorized: boolean }[] = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input: Request | string | URL, init?: RequestInit) => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const headers = new Headers(input instanceof Request ? input.headers : init?.headers);
  requests.push({ url, authorized: headers.get('authorization') === `Bearer ${token}` });
  return realFetch(input, init);
};

function clientWith(accessToken: string) {
  return Client.init({
    baseUrl,
    customHosts: new Set(['127.0.0.1']),
    authProvider: (done) => done(null, accessToken),
  });
}

const client = clientWith(token);

// The seed's Get-EntraBitLockerKeys: device by display name, its keys, each key with $select=key.
const devices = await client
  .api('/devices')
  .filter(`displayName eq '${deviceName.replace(/'/g, "''")}'`)
  .get();
const device = devices.value[0] as { id: string; deviceId: string; displayName: string };
const listed = await client
  .api('/informationProtection/bitlocker/recoveryKeys')
  .filter(`deviceId eq '${device.deviceId}'`)
  .get();
const keys: { id: string; key: string; volumeType: string; deviceId: string }[] = [];
for (const entry of listed.value as { id: string }[]) {
  keys.push(
    await client
      .api(`/informationProtection/bitlocker/recoveryKeys/${entry.id}`)
      .header('ocp-client-name', 'Get-EntraBitLockerKeys')
      .header('ocp-client-version', '1.0')
      .select('key')
      .get(),
  );
}

// Paging with the client's own iterator over several pages.
const firstPage = await client.api('/informationProtection/bitlocker/recoveryKeys').top(2).get();
const pagedIds: string[] = [];
const iterator = new PageIterator(client, firstPage, (item: { id: string }) => {
  pagedIds.push(item.id);
  return true;
});
await iterator.iterate();

// A wrong token is a GraphError carrying Graph's code.
let wrongToken:
  { isGraphError: boolean; code: string | undefined; statusCode: number | undefined } | undefined;
try {
  await clientWith(`bdv_at_${'z'.repeat(52)}`)
    .api('/devices')
    .filter("displayName eq 'x'")
    .get();
} catch (err) {
  wrongToken = {
    isGraphError: err instanceof GraphError,
    code: (err as GraphError).code ?? undefined,
    statusCode: (err as GraphError).statusCode,
  };
}

process.stdout.write(
  `${JSON.stringify({ device, listedCount: listed.value.length, keys, pagedIds, wrongToken, requests })}\n`,
);
