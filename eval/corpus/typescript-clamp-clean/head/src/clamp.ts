/** `value` limited to [min, max]; throws when the bounds are inverted. */
export function clamp(value: number, min: number, max: number): number {
  if (min > max) {
    throw new RangeError(`clamp: min ${min} is greater than max ${max}`);
  }
  return Math.min(Math.max(value, min), max);
}
