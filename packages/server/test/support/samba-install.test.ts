// The Samba availability check skips with a reason instead of failing where a DC cannot run.
import { afterEach, describe, expect, it, vi } from 'vitest';

describe('sambaAvailability', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.resetModules();
  });

  it('skips, saying why, when not running as root', async () => {
    vi.spyOn(process, 'getuid').mockReturnValue(1000);
    const { sambaAvailability } = await import('./samba-install.js');
    const availability = await sambaAvailability();
    expect(availability.ok).toBe(false);
    expect(!availability.ok && availability.reason).toMatch(/needs root/);
  });
});
