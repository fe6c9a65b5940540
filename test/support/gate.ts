/**
 * A promise that the other side resolves: a test waits on `opened` for something to have happened (a
 * request arrived, a round finished), or holds work back until it calls `open()`.
 */
export type Gate = { readonly opened: Promise<void>; open(): void };

export function gate(): Gate {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** A gate that opens once `count` distinct parties have arrived. */
export function countdown(count: number): Gate & { arrive(party: unknown): void } {
  const inner = gate();
  const arrived = new Set<unknown>();
  if (count <= 0) inner.open();
  return {
    ...inner,
    arrive(party) {
      arrived.add(party);
      if (arrived.size >= count) inner.open();
    },
  };
}
