/**
 * A Map that holds at most `max` entries: setting a key makes it the newest, and past `max` the oldest
 * goes. For the small in-memory caches in front of the store and of made responses (an insertion-ordered
 * Map is all they need; an LRU library would add a dependency for three lines).
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(private readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    this.delete(key);
    super.set(key, value);
    if (this.size > this.max) this.delete(this.keys().next().value!);
    return this;
  }
}
