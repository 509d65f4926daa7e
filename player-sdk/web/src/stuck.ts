/** Stuck-buffer watch: notices the loader no longer extending the buffer while newer media exists, and says where to skip to. */

/**
 * Why this exists: hls.js 1.7 in low-latency mode picks the next fragment at the buffer's
 * end with no tolerance. Chromium reports that end truncated to the microsecond, so at a
 * segment boundary the end can read 1 µs short of where hls.js places the next segment
 * (15.999999 against 16). When the segment before the boundary was joined part-way through
 * (after a start, a seek or a level switch), hls.js then keeps choosing that segment again:
 * it re-requests parts in a loop or loads nothing, and playback stalls for seconds until
 * the segment leaves the part window. Measured here: a 4.4 s stall in 1 of 5 starts on a
 * loaded 2-core machine. A seek a few milliseconds past the stuck end gets it loading again.
 */
export interface StuckConfig {
  /** Act only when less than this (s) is buffered ahead of the playhead. */
  maxAhead: number;
  /** ... and the buffer's end has not moved for this long (ms). */
  stuckForMs: number;
  /** ... and the live edge is at least this far (s) past the buffer's end (newer media exists). */
  behindEdge: number;
  /** Seek this far (s) past the buffer's end. */
  skip: number;
  /** At most one skip per this long (ms). */
  cooldownMs: number;
}

export function stuckConfig(over: Partial<StuckConfig> = {}): StuckConfig {
  return { maxAhead: 0.25, stuckForMs: 500, behindEdge: 0.5, skip: 0.02, cooldownMs: 3000, ...over };
}

/** Sans-IO: the caller passes the buffer's end, what is buffered ahead, the live edge and the time. */
export class StuckWatch {
  readonly config: StuckConfig;
  private end: number | null = null;
  private sinceMs = 0;
  private lastSkipMs = -Infinity;
  /** How many times it said to skip. */
  skips = 0;

  constructor(config: StuckConfig = stuckConfig()) {
    this.config = config;
  }

  /** Forgets the buffer's end (after a seek, a jump or an edge failover). */
  reset(): void {
    this.end = null;
  }

  /** The position to seek to, or null to leave playback alone. */
  update(bufferEnd: number, ahead: number, liveEdge: number | null, nowMs: number): number | null {
    const c = this.config;
    if (!Number.isFinite(bufferEnd)) return null;
    if (this.end === null || Math.abs(bufferEnd - this.end) > 0.001) {
      this.end = bufferEnd;
      this.sinceMs = nowMs;
      return null;
    }
    if (
      liveEdge === null ||
      !Number.isFinite(liveEdge) ||
      ahead >= c.maxAhead ||
      liveEdge - bufferEnd < c.behindEdge ||
      nowMs - this.sinceMs < c.stuckForMs ||
      nowMs - this.lastSkipMs < c.cooldownMs
    ) {
      return null;
    }
    this.lastSkipMs = nowMs;
    this.sinceMs = nowMs;
    this.skips++;
    return bufferEnd + c.skip;
  }
}
