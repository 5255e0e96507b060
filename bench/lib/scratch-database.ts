/**
 * A fresh PostgreSQL database for one benchmark run, created through an admin URL and dropped
 * (with its connections) by `drop`, also when the run fails.
 */
import { randomBytes } from 'node:crypto';
import { withClient } from './with-client.js';

export interface ScratchDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function asAdmin(adminUrl: string, statement: string): Promise<void> {
  await withClient(adminUrl, (admin) => admin.query(statement));
}

/** `prefix` names what the database is for (`bdevault_bench_writes`, …); a random suffix follows. */
export async function createScratchDatabase(adminUrl: string, prefix: string): Promise<ScratchDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  await asAdmin(adminUrl, `create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => asAdmin(adminUrl, `drop database if exists ${name} with (force)`),
  };
}
