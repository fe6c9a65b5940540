/**
 * Polls `probe` until it returns something other than undefined, and returns that; fails naming `what`
 * after the timeout. A probe that throws fails the wait at once (e.g. a process that exited).
 */
export async function waitForValue<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
  intervalMs = 100,
): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what} (${timeoutMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Polls until `check` holds; fails naming `what` after the timeout. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  intervalMs = 100,
): Promise<void> {
  await waitForValue(what, async () => ((await check()) ? true : undefined), timeoutMs, intervalMs);
}
