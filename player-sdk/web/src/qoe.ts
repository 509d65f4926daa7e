/** What a viewing session experiences (startup, stalls, latency, errors), and the QoE beacons that report it to the serving edge. */

/** The beacon contract of an edge's `POST /qoe` (version 1). */
export interface Beacon {
  v: 1;
  event: string;
  sid: string;
  seq: number;
  startup_ms?: number;
  watch_ms: number;
  stalls: number;
  stall_ms: number;
  stall_events: { at_ms: number; dur_ms: number }[];
  latency_ms: number[];
  errors: { code: string; fatal: boolean }[];
  ended: boolean;
}

/** Entries per list in one beacon (the edge refuses more than 64). */
const MAX_LIST = 32;
/** The edge believes no startup, latency or stall over 600 s. */
const MAX_MS = 600_000;

const ms = (v: number) => Math.max(0, Math.min(MAX_MS, Math.round(v)));

/** The live latencies seen, for percentiles; bounded. */
export class Samples {
  private values: number[] = [];
  constructor(private readonly max = 4096) {}
  push(v: number): void {
    if (!Number.isFinite(v)) return;
    this.values.push(v);
    if (this.values.length > this.max) this.values.splice(0, this.values.length - this.max);
  }
  get length(): number {
    return this.values.length;
  }
  /** The `p`-th percentile (0–100), nearest rank; null when empty. */
  percentile(p: number): number | null {
    if (this.values.length === 0) return null;
    const sorted = [...this.values].sort((a, b) => a - b);
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
  }
}

/**
 * One viewing session's accounting, on the player's clock (ms). A session is reported to
 * the edge serving it; after a failover the next edge gets a new leg: totals counted from
 * the switch, so that the origin's sum over edges is the session's whole (an edge refuses
 * to believe more watching than it has seen).
 */
export class QoeSession {
  private firstFrameMs: number | null = null;
  private startupMs: number | null = null;
  private legStartMs: number;
  /** Startup is reported by the first edge only (later legs began mid-session). */
  private firstLeg = true;
  private stallStartMs: number | null = null;
  private legStalls = 0;
  private legStallMs = 0;
  private stallEvents: { at_ms: number; dur_ms: number }[] = [];
  private latencies: number[] = [];
  private errors: { code: string; fatal: boolean }[] = [];
  private seq = 0;
  /** Whole-session figures, for the page and tests. */
  stalls = 0;
  stallMs = 0;

  constructor(
    readonly event: string,
    readonly sid: string,
    readonly startMs: number,
  ) {
    this.legStartMs = startMs;
  }

  get startup(): number | null {
    return this.startupMs;
  }

  get stalled(): boolean {
    return this.stallStartMs !== null;
  }

  firstFrame(nowMs: number): void {
    if (this.firstFrameMs !== null) return;
    this.firstFrameMs = nowMs;
    this.startupMs = nowMs - this.startMs;
    this.legStartMs = Math.max(this.legStartMs, nowMs);
  }

  /** Playback stopped for want of media (not a seek, not a pause). */
  stallStart(nowMs: number): void {
    if (this.firstFrameMs === null || this.stallStartMs !== null) return;
    this.stallStartMs = nowMs;
    this.stalls++;
    this.legStalls++;
  }

  /** Playback resumed; returns the stall's length, ms. */
  stallEnd(nowMs: number): number | null {
    if (this.stallStartMs === null) return null;
    const at = Math.max(this.stallStartMs, this.legStartMs);
    const dur = Math.max(0, nowMs - this.stallStartMs);
    this.stallMs += dur;
    this.legStallMs += Math.max(0, nowMs - at);
    if (this.stallEvents.length < MAX_LIST) {
      this.stallEvents.push({ at_ms: ms(at - this.legStartMs), dur_ms: ms(nowMs - at) });
    }
    this.stallStartMs = null;
    return dur;
  }

  latency(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    this.latencies.push(ms(seconds * 1000));
    if (this.latencies.length > MAX_LIST) this.latencies.shift();
  }

  error(code: string, fatal: boolean): void {
    if (this.errors.length < MAX_LIST) this.errors.push({ code: code.slice(0, 64), fatal });
  }

  /** Another edge serves from `nowMs`: its beacons count from here. */
  newLeg(nowMs: number): void {
    const stalled = this.stallStartMs !== null;
    this.legStartMs = nowMs;
    this.legStalls = stalled ? 1 : 0;
    this.legStallMs = 0;
    this.stallEvents = [];
    this.seq = 0;
    this.firstLeg = false;
  }

  /**
   * The beacon to send now, or null before the first frame when there is nothing to say.
   * Lists are emptied into it; the totals are running ones, so a lost beacon loses none.
   */
  beacon(nowMs: number, ended: boolean): Beacon | null {
    if (this.firstFrameMs === null && this.errors.length === 0 && !ended) return null;
    const watching = this.firstFrameMs !== null;
    const ongoing = this.stallStartMs === null ? 0 : nowMs - Math.max(this.stallStartMs, this.legStartMs);
    const watch = watching ? Math.max(0, nowMs - this.legStartMs) : 0;
    const b: Beacon = {
      v: 1,
      event: this.event,
      sid: this.sid,
      seq: ++this.seq,
      watch_ms: Math.round(watch),
      stalls: this.legStalls,
      stall_ms: Math.min(Math.round(watch), Math.round(this.legStallMs + Math.max(0, ongoing))),
      stall_events: this.stallEvents,
      latency_ms: this.latencies,
      errors: this.errors,
      ended,
    };
    if (this.startupMs !== null && this.firstLeg) b.startup_ms = ms(this.startupMs);
    this.stallEvents = [];
    this.latencies = [];
    this.errors = [];
    return b;
  }
}
