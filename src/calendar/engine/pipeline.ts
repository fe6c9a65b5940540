/**
 * Runs a generator one step ahead of its consumer: the next step is asked for as soon as the last one
 * is handed over, so the work behind it (a page fetched, a part expanded on a parser thread) goes on
 * while the consumer handles the last (stores it). At most one step waits, so memory stays bounded.
 * Whatever the source throws comes out at the step it belongs to; a consumer that stops early ends
 * the source once the step under way is done.
 */
export async function* readAhead<T, R>(
  source: AsyncGenerator<T, R, undefined>,
): AsyncGenerator<T, R, undefined> {
  let next = source.next();
  let finished = false;
  try {
    for (;;) {
      const step = await next;
      if (step.done) {
        finished = true;
        return step.value;
      }
      next = source.next();
      // Seen by the loop's next turn; a consumer that stops first must not leave it unhandled.
      next.catch(() => undefined);
      yield step.value;
    }
  } catch (error) {
    finished = true;
    throw error;
  } finally {
    if (!finished) {
      await next.catch(() => undefined);
      await source.return(undefined as R);
    }
  }
}
