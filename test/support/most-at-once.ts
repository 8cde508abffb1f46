/** The most of something counted at once beyond what was there at the start (a server's sessions of one kind), polled until stopped. */
export function mostAtOnce(count: () => Promise<number>): { stop: () => Promise<number> } {
  let stopped = false;
  const running = (async () => {
    const before = await count();
    let most = 0;
    while (!stopped) {
      most = Math.max(most, (await count()) - before);
      await new Promise((r) => setTimeout(r, 50));
    }
    return most;
  })();
  return {
    stop: async () => {
      stopped = true;
      return running;
    },
  };
}
