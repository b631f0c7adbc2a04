/** A reproducible source of random numbers for one test, and the seed that replays it. */
export interface SeededRandom {
  seed: number;
  /** The next number in [0, 1), like Math.random. */
  next(): number;
}

/**
 * A seeded PRNG (mulberry32). The seed is `SPIN_TEST_SEED` when set, to replay a failure, else
 * drawn at random; it is printed once, with the command that replays the run, so that a failure
 * on a loaded CI machine can be reproduced.
 */
export function seededRandom(testFile: string): SeededRandom {
  const given = process.env['SPIN_TEST_SEED'];
  const seed =
    given !== undefined && given !== '' ? Number(given) : Math.floor(Math.random() * 2 ** 32);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new Error(`SPIN_TEST_SEED must be an integer in [0, 2^32), not '${given ?? ''}'`);
  }
  console.log(
    `${testFile}: seed ${seed} (replay: SPIN_TEST_SEED=${seed} npx vitest run ${testFile})`,
  );
  let state = seed;
  return {
    seed,
    next: () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    },
  };
}
