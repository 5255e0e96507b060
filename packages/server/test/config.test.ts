// Configuration is validated at start with one clear message.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/lib/config.js';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 8080, logLevel: 'info', bodyLimitBytes: 1024 * 1024 });
    expect(c.dataDir.endsWith('/data')).toBe(true);
    expect(c.database).toEqual({ dialect: 'sqlite', path: `${c.dataDir}/bdevault.sqlite` });
    expect(c.kek).toEqual({ kind: 'file', path: `${c.dataDir}/kek.key` });
  });

  it('accepts postgres URLs and sqlite paths', () => {
    expect(loadConfig({ databaseUrl: 'postgres://u@127.0.0.1/db' }).database).toEqual({
      dialect: 'postgres',
      url: 'postgres://u@127.0.0.1/db',
      preparedStatements: true,
    });
    expect(loadConfig({ databaseUrl: 'sqlite:/tmp/x.sqlite' }).database).toEqual({
      dialect: 'sqlite',
      path: '/tmp/x.sqlite',
    });
  });

  it.each([
    [{ port: 'eighty' }, /port/],
    [{ port: 70000 }, /port/],
    [{ logLevel: 'loud' }, /logLevel/],
    [{ kekBase64: 'c2hvcnQ=' }, /32 bytes/],
    [{ kekBase64: Buffer.alloc(32).toString('base64'), kekFile: '/tmp/k' }, /not both/],
  ])('refuses %j', (input, message) => {
    expect(() => loadConfig(input)).toThrow(ConfigError);
    expect(() => loadConfig(input)).toThrow(message);
  });
});
