import type { FinishedLog } from './finished-log.js';

/**
 * Finished logs by job id, least recently used first out once the bytes held pass the budget. A Map keeps
 * insertion order, so re-inserting on a hit is the whole LRU.
 */
export class FinishedLogCache {
  readonly #entries = new Map<string, FinishedLog>();
  #bytes = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.#bytes;
  }

  get(id: string): FinishedLog | undefined {
    const entry = this.#entries.get(id);
    if (entry) {
      this.#entries.delete(id);
      this.#entries.set(id, entry);
    }
    return entry;
  }

  set(entry: FinishedLog): void {
    this.delete(entry.id);
    this.#entries.set(entry.id, entry);
    this.#bytes += entry.size;
    this.#evict();
  }

  /** An entry's size grew by `bytes` (a compressed form was added); entries evicted meanwhile do not count. */
  grew(entry: FinishedLog, bytes: number): void {
    if (this.#entries.get(entry.id) !== entry) return;
    this.#bytes += bytes;
    this.#evict();
  }

  #evict(): void {
    for (const [id, entry] of this.#entries) {
      if (this.#bytes <= this.maxBytes || this.#entries.size === 1) break;
      this.#entries.delete(id);
      this.#bytes -= entry.size;
    }
  }

  delete(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    this.#bytes -= entry.size;
  }
}
