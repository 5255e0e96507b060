/** The time source, injected so that expiry and audit timestamps are testable without a test branch. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** ISO-8601 UTC text: the one timestamp encoding stored in every dialect (sorts lexically). */
export function isoNow(clock: Clock): string {
  return clock.now().toISOString();
}
