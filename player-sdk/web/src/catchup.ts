/** Live-latency catch-up: the playback rate that brings measured latency to its target without oscillating. */

/** How the controller steers. Times in seconds. */
export interface CatchupConfig {
  /** The live latency to hold. */
  target: number;
  /** Correction starts when the smoothed error is larger than this. */
  engage: number;
  /** Correction stops (rate back to 1) when the smoothed error is smaller than this. */
  settle: number;
  /** Fastest and slowest playback rates used. */
  maxRate: number;
  minRate: number;
  /** Rate change per second of error: 1 s behind at 0.2 plays at 1.2 (then clamped). */
  gain: number;
  /** Time constant of the latency smoothing (an exponential moving average). */
  smoothing: number;
  /** Never play faster than 1 with less media than this buffered ahead. */
  minBuffer: number;
  /** Further behind than this, jump to the live position rather than speed up. */
  jumpBeyond: number;
}

/** Defaults for a target: corrections of at most ±10 %, a deadband of 0.1–0.25 s. */
export function catchupConfig(target: number, over: Partial<CatchupConfig> = {}): CatchupConfig {
  return {
    target,
    engage: 0.25,
    settle: 0.08,
    maxRate: 1.1,
    minRate: 0.92,
    gain: 0.2,
    smoothing: 1.0,
    minBuffer: 0.4,
    jumpBeyond: 4,
    ...over,
  };
}

/** What to do now. */
export interface CatchupDecision {
  /** The playback rate to set (a multiple of 0.01). */
  rate: number;
  /** Jump to the live position (the error is beyond `jumpBeyond`). */
  jump: boolean;
  /** The smoothed latency the decision was made on. */
  smoothed: number;
}

/**
 * A proportional controller with hysteresis: it leaves the rate at 1 inside the deadband,
 * so that a latency near its target is not chased back and forth, and steers on a smoothed
 * latency, so that one late part does not swing the rate. Sans-IO: the caller passes the
 * measured latency, the buffer ahead of the playhead and the time.
 */
export class Catchup {
  readonly config: CatchupConfig;
  private smoothed: number | null = null;
  private lastMs: number | null = null;
  private correcting = false;

  constructor(config: CatchupConfig) {
    if (!(config.target > 0) || !(config.settle < config.engage) || !(config.minRate <= 1 && config.maxRate >= 1)) {
      throw new RangeError('catch-up: target > 0, settle < engage and minRate <= 1 <= maxRate are required');
    }
    this.config = config;
  }

  /** Forgets the latency history (after a seek, a jump or an edge failover). */
  reset(): void {
    this.smoothed = null;
    this.lastMs = null;
    this.correcting = false;
  }

  update(latency: number, bufferAhead: number, nowMs: number): CatchupDecision {
    const c = this.config;
    if (!Number.isFinite(latency)) {
      return { rate: 1, jump: false, smoothed: this.smoothed ?? NaN };
    }
    if (this.smoothed === null || this.lastMs === null) {
      this.smoothed = latency;
    } else {
      const dt = Math.max(0, nowMs - this.lastMs) / 1000;
      const alpha = 1 - Math.exp(-dt / c.smoothing);
      this.smoothed += alpha * (latency - this.smoothed);
    }
    this.lastMs = nowMs;
    const smoothed = this.smoothed;
    const error = smoothed - c.target;
    if (error > c.jumpBeyond) {
      this.reset();
      return { rate: 1, jump: true, smoothed };
    }
    if (!this.correcting && Math.abs(error) > c.engage) this.correcting = true;
    if (this.correcting && Math.abs(error) < c.settle) this.correcting = false;
    let rate = 1;
    if (this.correcting) {
      rate = Math.min(c.maxRate, Math.max(c.minRate, 1 + c.gain * error));
      if (bufferAhead < c.minBuffer) rate = Math.min(rate, 1);
    }
    return { rate: Math.round(rate * 100) / 100, jump: false, smoothed };
  }
}
