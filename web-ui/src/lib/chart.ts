// Turning a series into an SVG path: the usage charts draw with this, no chart library.

export interface Point {
  x: number;
  y: number;
}

/** A round axis maximum at or above `max` (1, 2, 2.5, 5 × 10ⁿ). */
export function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= max) return step * power;
  }
  return 10 * power;
}

/** Scales points into a `width`×`height` box (y grows downward) and returns the path. */
export function linePath(points: Point[], width: number, height: number, yMax: number): string {
  if (points.length === 0) return "";
  const xs = points.map((p) => p.x);
  const xMin = Math.min(...xs);
  const xSpan = Math.max(...xs) - xMin || 1;
  return points
    .map((p, i) => {
      const x = ((p.x - xMin) / xSpan) * width;
      const y = height - (Math.min(p.y, yMax) / (yMax || 1)) * height;
      return `${i === 0 ? "M" : "L"}${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}
