// The postgres project's test runner: every file's tests sit under a `|server-postgres|` suite so the
// JSON report (which names files, not projects) tells the PostgreSQL results from the SQLite ones.
import { describe, TestRunner } from 'vitest';

type ImportSource = Parameters<TestRunner['importFile']>[1];

export default class ProjectNamedRunner extends TestRunner {
  override importFile(filepath: string, source: ImportSource): unknown {
    if (source !== 'collect') return super.importFile(filepath, source);
    // The suite's factory runs during collection, so the file's own describes and hooks register
    // inside it; the file is imported once, exactly as without the wrapper.
    describe(`|${this.config.name}|`, async () => {
      await super.importFile(filepath, source);
    });
    return undefined;
  }
}
