/** A deterministic xorshift32 generator: `next(m)` is an integer in [0, m). Tests stay repeatable. */
export function seededRandom(seed: number): (m: number) => number {
  let state = seed >>> 0;
  return (m) => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % m;
  };
}
