// Entry point of the root `npm run bench` script: runs the TypeScript benchmarks through tsx.
//   npm run bench -- [--runs 11]            stretch.ts (the default, as before)
//   npm run bench -- stretch [--runs 11]    the same, named
//   npm run bench -- vault [--devices N …]  vault.ts (escrow ingest, lookups, disclosure)
//   npm run bench -- decrypt [--runs 7 …]   decrypt.ts (whole-volume decryption against dislocker-file)
//   npm run bench -- vault-postgres [--devices N …]  vault-postgres.ts (PostgreSQL at scale + pgbench)
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const benches = {
  stretch: 'stretch.ts',
  vault: 'vault.ts',
  'vault-postgres': 'vault-postgres.ts',
  decrypt: 'decrypt.ts',
};
const [first, ...rest] = process.argv.slice(2);
const named = first !== undefined && Object.hasOwn(benches, first);
const script = fileURLToPath(new URL(`./${named ? benches[first] : benches.stretch}`, import.meta.url));
// npx resolves the workspace's tsx; extra arguments (e.g. --runs 20) pass through.
const args = named ? rest : process.argv.slice(2);
const r = spawnSync('npx', ['tsx', script, ...args], { stdio: 'inherit' });
process.exit(r.status ?? 1);
