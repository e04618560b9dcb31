import type { LiveBus, LiveEvent, LiveListener } from './bus.js';

/** The single-node bus: listeners per job, called synchronously with the very event object (one buffer per append). */
export class MemoryBus implements LiveBus {
  readonly #listeners = new Map<string, Set<LiveListener>>();

  publish(event: LiveEvent): void {
    const set = this.#listeners.get(event.jobId);
    if (!set) return;
    // Copy so that a listener may unsubscribe (or subscribe another) while we dispatch.
    for (const listener of [...set]) {
      try {
        listener(event);
      } catch {
        // One broken follower must not stop the others; it cleans itself up on its own error path.
      }
    }
  }

  subscribe(jobId: string, listener: LiveListener): () => void {
    let set = this.#listeners.get(jobId);
    if (!set) this.#listeners.set(jobId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#listeners.get(jobId) === set) this.#listeners.delete(jobId);
    };
  }

  /** How many jobs have followers (lets tests prove that disconnected followers free their subscription). */
  get subscribedJobs(): number {
    return this.#listeners.size;
  }

  /** The jobs that have followers now. */
  jobIds(): string[] {
    return [...this.#listeners.keys()];
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
