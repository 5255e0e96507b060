/**
 * Loads @bdevault/server on first use: the offline toolkit (`password`, `volume`) then runs without
 * the server's database drivers and native modules ever being loaded.
 */
import type * as Server from '@bdevault/server';

export type ServerModule = typeof Server;

let loading: Promise<ServerModule> | undefined;

export function loadServer(): Promise<ServerModule> {
  loading ??= import('@bdevault/server');
  return loading;
}
