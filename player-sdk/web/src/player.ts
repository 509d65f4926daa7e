/** The `<popcast-player>` element: resolves edges through `/play`, plays LL-HLS with hls.js (or natively), holds the live latency, reports QoE and fails over between edges. */

import Hls from 'hls.js';
import type {
  ErrorData,
  HlsConfig,
  Level,
  Loader,
  LoaderCallbacks,
  LoaderConfiguration,
  LoaderContext,
  LoaderStats,
  LoadPolicy,
} from 'hls.js';
import { Catchup, catchupConfig } from './catchup';
import { StuckWatch } from './stuck';
import { EdgeSet, parsePlay, PlayAnswerError, type Edge } from './edges';
import { QoeSession, Samples, type Beacon } from './qoe';
import { STYLE, TEMPLATE } from './ui';

/** What the player is doing, as `data-state` on the element and `stats.state`. */
export type PlayerState =
  | 'idle'
  | 'loading'
  | 'waiting'
  | 'playing'
  | 'stalled'
  | 'ended'
  | 'not-allowed'
  | 'not-found'
  | 'error';

/** Options of `create()`; the element's attributes carry the same (kebab-case). */
export interface PlayerOptions {
  event: string;
  /** The Popcast origin answering `/play`; by default the one this script came from. */
  origin?: string;
  /** A viewer token, for ticketed events. */
  token?: string;
  /** The viewer's region, to prefer its edges. */
  region?: string;
  /** Live latency to hold, seconds; by default the playlist's PART-HOLD-BACK + 0.4 s. */
  targetLatency?: number;
  /** Start muted (the default: browsers only autoplay muted video). */
  muted?: boolean;
  /** Seconds between QoE beacons; 0 sends none. */
  beaconEvery?: number;
  /** hls.js's own debug log on the console. */
  debug?: boolean;
}

/** A live-latency reading. */
export interface LatencyDetail {
  latency: number;
  target: number;
  rate: number;
}

/** What the player measured; plain data (tests and debugging read it). */
export interface PlayerStats {
  state: PlayerState;
  message: string;
  event: string;
  sid: string;
  node: string | null;
  region: string | null;
  edges: number;
  startupMs: number | null;
  playing: boolean;
  stalls: number;
  stallMs: number;
  /** Times the stuck-buffer watch skipped a few milliseconds to get hls.js loading again. */
  skips: number;
  latency: number | null;
  latencyP50: number | null;
  latencyP95: number | null;
  latencySamples: number;
  target: number | null;
  rate: number;
  currentTime: number;
  level: number;
  levels: { height: number; bitrate: number }[];
  failovers: { atMs: number; from: string; to: string; why: string; resumedMs: number | null }[];
  errors: string[];
  fatal: string | null;
  beacons: { sent: number; accepted: number; refused: number; failed: number };
  engine: 'hls.js' | 'native' | null;
}

const TICK_MS = 250;
/** A latency sample for beacons and percentiles every this many ticks (1 s). */
const SAMPLE_EVERY = 4;
const PLAY_TIMEOUT_MS = 8000;

/** hls.js's waits, short so that a dead edge is noticed and left within a second or two. */
function policy(ttfbMs: number, loadMs: number, retries: number): LoadPolicy {
  return {
    default: {
      maxTimeToFirstByteMs: ttfbMs,
      maxLoadTimeMs: loadMs,
      timeoutRetry: { maxNumRetry: retries, retryDelayMs: 0, maxRetryDelayMs: 0 },
      errorRetry: { maxNumRetry: retries, retryDelayMs: 150, maxRetryDelayMs: 1500, backoff: 'linear' },
    },
  };
}

type LoaderCtor = new (config: HlsConfig) => Loader<LoaderContext>;

/** What a loader reports to the player about the edge it talked to. */
interface EdgeHooks {
  rewrite(url: string): string;
  fault(url: string, why: string): void;
  ok(url: string): void;
}

/** hls.js's loader with every request sent to the serving edge, and edge faults reported. */
function failoverLoader(Base: LoaderCtor, hooks: EdgeHooks): LoaderCtor {
  return class FailoverLoader extends Base {
    load(context: LoaderContext, config: LoaderConfiguration, callbacks: LoaderCallbacks<LoaderContext>): void {
      const url = hooks.rewrite(context.url);
      context.url = url;
      super.load(context, config, {
        ...callbacks,
        onSuccess: (response, stats, ctx, details) => {
          hooks.ok(url);
          callbacks.onSuccess(response, stats, ctx, details);
        },
        onError: (error, ctx, details, stats: LoaderStats) => {
          // 503 is an edge's "not yet" (no stream yet, or full): not a broken edge.
          if (error.code === 0 || (error.code >= 500 && error.code !== 503)) {
            hooks.fault(url, error.code === 0 ? 'unreachable' : `HTTP ${error.code}`);
          }
          callbacks.onError(error, ctx, details, stats);
        },
        onTimeout: (stats, ctx, details) => {
          hooks.fault(url, 'timeout');
          callbacks.onTimeout(stats, ctx, details);
        },
      });
    }
  };
}

function randomId(): string {
  if (typeof crypto !== 'undefined' && 'randomUUID' in crypto) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

/** The origin this script was served from, when it was served over http(s). */
function scriptOrigin(): string | null {
  try {
    const u = new URL(import.meta.url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.origin : null;
  } catch {
    return null;
  }
}

function mbps(bits: number): string {
  return bits >= 1e6 ? `${(bits / 1e6).toFixed(1)} Mb/s` : `${Math.round(bits / 1e3)} kb/s`;
}

/** `<popcast-player event="…" origin="…" token="…" region="…" target-latency="…" muted>`. */
export class PopcastPlayer extends HTMLElement {
  static get observedAttributes(): string[] {
    return ['event', 'origin', 'token', 'region', 'target-latency'];
  }

  private opts: PlayerOptions | null = null;
  private hls: Hls | null = null;
  private edgeSet: EdgeSet | null = null;
  private qoe: QoeSession | null = null;
  private catchup: Catchup | null = null;
  private readonly stuck = new StuckWatch();
  private samples = new Samples();
  private timers: number[] = [];
  private retryTimer: number | null = null;
  private ticks = 0;
  private startMs = 0;
  private generation = 0;
  private pendingFailover: { from: string; atMs: number } | null = null;
  private readonly root: ShadowRoot;
  private readonly video: HTMLVideoElement;
  private readonly ui: Record<'msg' | 'live' | 'lat' | 'unmute' | 'quality' | 'toggle' | 'fs', HTMLElement>;
  private readonly onPageHide = () => this.sendBeacon(true, true);
  private readonly onVisibility = () => {
    if (document.visibilityState === 'hidden') this.sendBeacon(false, true);
  };

  readonly stats: PlayerStats = {
    state: 'idle',
    message: '',
    event: '',
    sid: randomId(),
    node: null,
    region: null,
    edges: 0,
    startupMs: null,
    playing: false,
    stalls: 0,
    stallMs: 0,
    skips: 0,
    latency: null,
    latencyP50: null,
    latencyP95: null,
    latencySamples: 0,
    target: null,
    rate: 1,
    currentTime: 0,
    level: -1,
    levels: [],
    failovers: [],
    errors: [],
    fatal: null,
    beacons: { sent: 0, accepted: 0, refused: 0, failed: 0 },
    engine: null,
  };

  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.root.innerHTML = `<style>${STYLE}</style>${TEMPLATE}`;
    const q = <T extends HTMLElement>(sel: string) => this.root.querySelector(sel) as T;
    this.video = q<HTMLVideoElement>('video');
    this.ui = {
      msg: q('.msg'),
      live: q('.live'),
      lat: q('.lat'),
      unmute: q('.unmute'),
      quality: q('.quality'),
      toggle: q('.toggle'),
      fs: q('.fs'),
    };
    this.wireUi();
  }

  connectedCallback(): void {
    if (!this.opts && this.getAttribute('event')) this.start(this.fromAttributes());
  }

  disconnectedCallback(): void {
    this.stop();
  }

  attributeChangedCallback(_name: string, old: string | null, value: string | null): void {
    // Before the first start (the parser or an upgrade setting attributes one by one), wait
    // for connectedCallback.
    if (old === value || !this.opts || !this.isConnected || !this.getAttribute('event')) return;
    this.start(this.fromAttributes());
  }

  private fromAttributes(): PlayerOptions {
    const target = Number(this.getAttribute('target-latency'));
    return {
      event: this.getAttribute('event') ?? '',
      origin: this.getAttribute('origin') ?? undefined,
      token: this.getAttribute('token') ?? undefined,
      region: this.getAttribute('region') ?? undefined,
      targetLatency: target > 0 ? target : undefined,
      muted: this.getAttribute('muted') !== 'false',
      beaconEvery: this.hasAttribute('beacon-every') ? Number(this.getAttribute('beacon-every')) : undefined,
      debug: this.hasAttribute('debug'),
    };
  }

  /** The serving edge. */
  get edge(): Edge | null {
    return this.edgeSet?.active ?? null;
  }

  /** Plays `opts.event` (stopping whatever played before). */
  start(opts: PlayerOptions): void {
    this.stop();
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(opts.event)) {
      this.setState('error', `"${opts.event}" is not an event name`);
      return;
    }
    this.opts = opts;
    this.generation++;
    this.startMs = performance.now();
    this.stats.event = opts.event;
    this.qoe = new QoeSession(opts.event, this.stats.sid, this.startMs);
    this.video.muted = opts.muted !== false;
    this.showMuted();
    window.addEventListener('pagehide', this.onPageHide);
    document.addEventListener('visibilitychange', this.onVisibility);
    this.timers.push(window.setInterval(() => this.tick(), TICK_MS));
    const every = opts.beaconEvery ?? 10;
    if (every > 0) this.timers.push(window.setInterval(() => this.sendBeacon(false, false), every * 1000));
    void this.resolve(this.generation);
  }

  /** Stops playing and sends the session's last beacon. */
  stop(): void {
    if (this.opts) this.sendBeacon(true, true);
    this.generation++;
    this.timers.forEach((t) => clearInterval(t));
    this.timers = [];
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    window.removeEventListener('pagehide', this.onPageHide);
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.hls?.destroy();
    this.hls = null;
    this.video.removeAttribute('src');
    this.opts = null;
  }

  private origin(): string {
    const o = this.opts?.origin ?? scriptOrigin() ?? location.origin;
    return o.replace(/\/+$/, '');
  }

  private retry(gen: number, ms: number, fn: () => void): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => {
      this.retryTimer = null;
      if (gen === this.generation) fn();
    }, ms);
  }

  /** Asks `/play` where to watch; on success starts playback (or switches edges). */
  private async resolve(gen: number): Promise<void> {
    const o = this.opts!;
    if (!this.stats.playing) this.setState('loading', 'Connecting…');
    const q = new URLSearchParams({ format: 'json' });
    if (o.region) q.set('region', o.region);
    if (o.token) q.set('token', o.token);
    const url = `${this.origin()}/play/${encodeURIComponent(o.event)}?${q}`;
    let res: Response;
    let body: Record<string, unknown> = {};
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(PLAY_TIMEOUT_MS), cache: 'no-store' });
      body = await res.json().catch(() => ({}));
    } catch {
      if (gen !== this.generation) return;
      this.error('play:unreachable', false);
      if (!this.stats.playing) this.setState('error', 'Cannot reach the stream server. Retrying…');
      this.retry(gen, 3000, () => void this.resolve(gen));
      return;
    }
    if (gen !== this.generation) return;
    const detail = typeof body.detail === 'string' ? body.detail : '';
    switch (res.status) {
      case 200:
        break;
      case 403:
        this.fatal(
          'not-allowed',
          'play:forbidden',
          o.token ? 'Your ticket for this event was not accepted (it may have expired).' : 'This event needs a ticket.',
        );
        if (detail) this.stats.errors.push(`play:forbidden: ${detail}`.slice(0, 200));
        return;
      case 404:
        this.fatal('not-found', 'play:not-found', 'There is no such event.');
        return;
      case 410:
        this.fatal('ended', 'play:ended', 'This event has ended.');
        return;
      case 503: {
        const wait = Math.min(30, Math.max(1, Number(res.headers.get('Retry-After')) || 2));
        const starts = typeof body.starts_at === 'string' ? new Date(body.starts_at) : null;
        const when =
          starts && !isNaN(starts.getTime())
            ? `This event starts at ${starts.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}.`
            : 'This event has not started yet.';
        this.setState('waiting', when);
        this.retry(gen, wait * 1000, () => void this.resolve(gen));
        return;
      }
      default:
        this.error(`play:http-${res.status}`, false);
        this.setState('error', `The stream server answered ${res.status}. Retrying…`);
        this.retry(gen, 5000, () => void this.resolve(gen));
        return;
    }
    let edges: Edge[];
    try {
      edges = parsePlay(body);
    } catch (e) {
      this.fatal('error', 'play:bad-answer', e instanceof PlayAnswerError ? e.message : String(e));
      return;
    }
    if (this.edgeSet) {
      if (this.edgeSet.replace(edges, performance.now())) this.switched('refreshed');
      this.hls?.startLoad();
      return;
    }
    this.edgeSet = new EdgeSet(edges);
    this.stats.edges = edges.length;
    this.stats.node = this.edgeSet.active.node;
    this.stats.region = this.edgeSet.active.region;
    this.attach(gen);
  }

  private attach(gen: number): void {
    const edges = this.edgeSet!;
    const o = this.opts!;
    if (Hls.isSupported()) {
      this.stats.engine = 'hls.js';
      const hooks: EdgeHooks = {
        rewrite: (u) => edges.rewrite(u),
        ok: (u) => this.edgeOk(u),
        fault: (u, why) => this.edgeFault(u, why),
      };
      const hls = new Hls({
        debug: o.debug === true,
        lowLatencyMode: true,
        // No backBufferLength: hls.js 1.7's back-buffer removals every part, in low-latency
        // mode, now and then left it loading nothing at a segment boundary until the
        // playlist window moved on (4-5 s stalls, 3 runs in 10 of 60 s). The browser evicts
        // played media itself when its buffer quota fills.
        // The catch-up controller steers the rate; hls.js only picks the start position.
        maxLiveSyncPlaybackRate: 1,
        capLevelToPlayerSize: true,
        cmcd: { sessionId: this.stats.sid, contentId: o.event },
        loader: failoverLoader(Hls.DefaultConfig.loader as LoaderCtor, hooks),
        manifestLoadPolicy: policy(4000, 8000, 6),
        playlistLoadPolicy: policy(3000, 6000, 8),
        fragLoadPolicy: policy(3000, 10000, 8),
      });
      this.hls = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, (_e, d) => this.onLevels(d.levels));
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, d) => {
        this.stats.level = d.level;
      });
      hls.on(Hls.Events.LEVEL_UPDATED, (_e, d) => {
        if (this.catchup === null && hls.targetLatency !== null) this.setTarget(hls.targetLatency);
        if (!d.details.live) this.stats.message = 'ended';
      });
      hls.on(Hls.Events.ERROR, (_e, d) => this.onHlsError(gen, d));
      hls.loadSource(edges.active.url);
      hls.attachMedia(this.video);
    } else if (this.video.canPlayType('application/vnd.apple.mpegurl')) {
      // Safari plays LL-HLS itself; its start date gives the latency.
      this.stats.engine = 'native';
      this.setTarget(o.targetLatency ?? 2.5);
      this.video.src = edges.active.url;
      this.emit('ready', { engine: 'native' });
    } else {
      this.fatal('error', 'unsupported', 'This browser cannot play the stream.');
      return;
    }
    this.video.play().catch(() => this.autoplayBlocked());
  }

  private setTarget(holdBack: number): void {
    const target = this.opts?.targetLatency ?? Math.max(0.8, holdBack + 0.4);
    this.catchup = new Catchup(catchupConfig(target));
    this.stats.target = target;
  }

  private onLevels(levels: Level[]): void {
    this.stats.levels = levels.map((l) => ({ height: l.height, bitrate: l.bitrate }));
    const sel = this.ui.quality as HTMLSelectElement;
    const order = levels.map((l, i) => ({ l, i })).sort((a, b) => b.l.height - a.l.height || b.l.bitrate - a.l.bitrate);
    sel.replaceChildren(
      new Option('Auto', '-1', true, true),
      ...order.map(({ l, i }) => new Option(l.height ? `${l.height}p · ${mbps(l.bitrate)}` : mbps(l.bitrate), String(i))),
    );
    sel.hidden = levels.length < 2;
    this.emit('ready', { engine: 'hls.js', levels: this.stats.levels });
  }

  private onHlsError(gen: number, d: ErrorData): void {
    if (gen !== this.generation) return;
    const code = `${d.type}:${d.details}${d.fatal ? ':fatal' : ''}`;
    this.error(code, d.fatal);
    if (!d.fatal) return;
    const status = d.response?.code ?? 0;
    const hls = this.hls!;
    if (d.type === Hls.ErrorTypes.NETWORK_ERROR) {
      if (status === 403) {
        this.fatal('not-allowed', code, 'This event needs a valid ticket.');
      } else if (status === 410) {
        this.fatal('ended', code, 'This event has ended.');
      } else if (!this.stats.playing && (status === 503 || status === 404)) {
        // The edge holds the event but the creator is not live yet: keep asking.
        this.setState('waiting', 'Waiting for the creator to go live…');
        this.retry(gen, 2000, () => hls.loadSource(this.edgeSet!.active.url));
      } else {
        // Out of retries on this edge: another one, else ask /play again.
        const node = this.edgeSet!.active.node;
        if (!this.switchEdge(node, `fatal ${d.details}`)) this.retry(gen, 1000, () => void this.resolve(gen));
        this.retry(gen, 250, () => hls.startLoad());
      }
    } else if (d.type === Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
    } else {
      this.fatal('error', code, 'Playback failed.');
    }
  }

  private edgeOk(url: string): void {
    const pending = this.pendingFailover;
    if (!pending || this.edgeSet?.nodeOf(url) !== this.edgeSet?.active.node) return;
    const f = this.stats.failovers[this.stats.failovers.length - 1];
    if (f && f.resumedMs === null) f.resumedMs = Math.round(performance.now() - pending.atMs);
    this.pendingFailover = null;
  }

  private edgeFault(url: string, why: string): void {
    const node = this.edgeSet?.nodeOf(url);
    if (node && node === this.edgeSet?.active.node) this.switchEdge(node, why);
  }

  /** Leaves `node` for the next edge; false when there is none to go to. */
  private switchEdge(node: string, why: string): boolean {
    const edges = this.edgeSet!;
    const now = performance.now();
    const next = edges.fail(node, now);
    if (!next) {
      const gen = this.generation;
      this.retry(gen, 1000, () => void this.resolve(gen));
      return false;
    }
    this.stats.failovers.push({ atMs: Math.round(now - this.startMs), from: node, to: next.node, why, resumedMs: null });
    if (this.stats.failovers.length > 20) this.stats.failovers.shift();
    this.pendingFailover = { from: node, atMs: now };
    this.switched(why);
    return true;
  }

  private switched(why: string): void {
    const edge = this.edgeSet!.active;
    this.stats.node = edge.node;
    this.stats.region = edge.region;
    this.qoe?.newLeg(performance.now());
    this.catchup?.reset();
    this.stuck.reset();
    if (this.stats.engine === 'native') {
      const t = this.video.currentTime;
      this.video.src = edge.url;
      this.video.currentTime = t;
      this.video.play().catch(() => {});
    }
    this.emit('failover', { node: edge.node, region: edge.region, why });
  }

  private autoplayBlocked(): void {
    if (!this.video.muted) {
      this.video.muted = true;
      this.showMuted();
      this.video.play().catch(() => this.setState(this.stats.state, 'Press play to watch.'));
    }
  }

  private wireUi(): void {
    const v = this.video;
    v.addEventListener('playing', () => {
      const now = performance.now();
      const first = !this.stats.playing;
      this.stats.playing = true;
      if (first) {
        this.qoe?.firstFrame(now);
        this.stats.startupMs = Math.round(now - this.startMs);
      }
      const dur = this.qoe?.stallEnd(now);
      if (dur != null) this.emit('stall', { phase: 'end', durationMs: Math.round(dur) });
      this.setState('playing', '');
      this.emit('playing', { first });
    });
    v.addEventListener('waiting', () => {
      if (!this.stats.playing || v.seeking || this.qoe?.stalled) return;
      this.qoe?.stallStart(performance.now());
      this.catchup?.reset();
      this.setState('stalled', '');
      this.emit('stall', { phase: 'start' });
    });
    v.addEventListener('ended', () => this.fatal('ended', 'ended', 'This event has ended.'));
    v.addEventListener('volumechange', () => this.showMuted());
    v.addEventListener('pause', () => (this.ui.toggle.textContent = '▶'));
    v.addEventListener('play', () => (this.ui.toggle.textContent = '❚❚'));
    this.ui.unmute.addEventListener('click', () => {
      v.muted = false;
      v.play().catch(() => this.autoplayBlocked());
    });
    this.ui.toggle.addEventListener('click', () => {
      if (v.paused) v.play().catch(() => this.autoplayBlocked());
      else v.pause();
    });
    this.ui.live.addEventListener('click', () => this.goLive());
    this.ui.quality.addEventListener('change', () => {
      const n = Number((this.ui.quality as HTMLSelectElement).value);
      // loadLevel: the pick applies to the next part or segment loaded and nothing buffered
      // is flushed (nextLevel flushes what is buffered ahead, which at a one-second live
      // buffer leaves a hole and a stall), so the switch shows within about the buffer.
      if (this.hls) this.hls.loadLevel = n;
    });
    this.ui.fs.addEventListener('click', () => {
      if (document.fullscreenElement) void document.exitFullscreen();
      else void this.root.querySelector('.box')?.requestFullscreen?.();
    });
  }

  private goLive(): void {
    const live = this.hls?.liveSyncPosition;
    if (live != null && Number.isFinite(live)) this.video.currentTime = live;
    this.catchup?.reset();
    this.stuck.reset();
    if (this.video.paused) this.video.play().catch(() => this.autoplayBlocked());
  }

  private showMuted(): void {
    this.ui.unmute.hidden = !this.video.muted;
  }

  private measureLatency(): number | null {
    if (this.hls) {
      const d = this.hls.playingDate;
      return d ? (Date.now() - d.getTime()) / 1000 : null;
    }
    const start = (this.video as HTMLVideoElement & { getStartDate?: () => Date }).getStartDate?.();
    if (!start || isNaN(start.getTime())) return null;
    return (Date.now() - start.getTime()) / 1000 - this.video.currentTime;
  }

  private tick(): void {
    const v = this.video;
    this.stats.currentTime = v.currentTime;
    this.ticks++;
    if (!this.stats.playing || v.paused) return;
    let ahead = 0;
    for (let i = 0; i < v.buffered.length; i++) {
      if (v.buffered.start(i) <= v.currentTime + 0.1 && v.buffered.end(i) > v.currentTime) {
        ahead = v.buffered.end(i) - v.currentTime;
      }
    }
    if (this.hls && !v.seeking) {
      const edge = this.hls.latestLevelDetails?.edge ?? null;
      const to = this.stuck.update(v.currentTime + ahead, ahead, edge, performance.now());
      if (to !== null) {
        this.stats.skips = this.stuck.skips;
        // Recorded for diagnosis, not reported as a QoE error: playback goes on.
        this.stats.errors.push(`recovered:stuck-buffer at ${(to - this.stuck.config.skip).toFixed(6)}`);
        if (this.stats.errors.length > 50) this.stats.errors.shift();
        this.catchup?.reset();
        v.currentTime = to;
      }
    }
    const latency = this.measureLatency();
    if (latency === null) return;
    this.stats.latency = Math.round(latency * 1000) / 1000;
    let rate = 1;
    if (this.catchup && this.stats.state === 'playing') {
      const d = this.catchup.update(latency, ahead, performance.now());
      if (d.jump) this.goLive();
      rate = d.rate;
    }
    if (v.playbackRate !== rate) v.playbackRate = rate;
    this.stats.rate = rate;
    if (this.ticks % SAMPLE_EVERY === 0 && this.stats.state === 'playing') {
      this.samples.push(latency);
      this.qoe?.latency(latency);
      this.stats.latencyP50 = this.samples.percentile(50);
      this.stats.latencyP95 = this.samples.percentile(95);
      this.stats.latencySamples = this.samples.length;
    }
    this.stats.stalls = this.qoe?.stalls ?? 0;
    this.stats.stallMs = Math.round(this.qoe?.stallMs ?? 0);
    const target = this.stats.target;
    this.ui.lat.textContent = `${latency.toFixed(1)} s`;
    this.ui.live.classList.toggle('behind', target !== null && latency > target + 1.5);
    this.emit('latency', { latency, target: target ?? NaN, rate } satisfies LatencyDetail);
  }

  /** Sends the session's beacon to the serving edge (`unloading`: with sendBeacon). */
  private sendBeacon(ended: boolean, unloading: boolean): void {
    const edge = this.edgeSet?.active;
    const b: Beacon | null = edge ? (this.qoe?.beacon(performance.now(), ended) ?? null) : null;
    if (!edge || !b) return;
    const token = this.opts?.token;
    const url = `${edge.base}/qoe${token ? `?token=${encodeURIComponent(token)}` : ''}`;
    const body = JSON.stringify(b);
    this.stats.beacons.sent++;
    // text/plain needs no CORS preflight; the edge reads it as JSON.
    if (unloading && navigator.sendBeacon?.(url, new Blob([body], { type: 'text/plain;charset=UTF-8' }))) return;
    fetch(url, {
      method: 'POST',
      body,
      keepalive: true,
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
    }).then(
      (r) => {
        if (r.ok) this.stats.beacons.accepted++;
        else this.stats.beacons.refused++;
      },
      () => this.stats.beacons.failed++,
    );
  }

  private error(code: string, fatal: boolean): void {
    this.stats.errors.push(code);
    if (this.stats.errors.length > 50) this.stats.errors.shift();
    this.qoe?.error(code, fatal);
    this.emit('error', { code, fatal });
  }

  private fatal(state: PlayerState, code: string, message: string): void {
    if (state !== 'ended') {
      this.stats.fatal = code;
      this.error(code, true);
    }
    this.setState(state, message);
    this.hls?.stopLoad();
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private setState(state: PlayerState, message: string): void {
    this.stats.state = state;
    this.stats.message = message;
    this.setAttribute('data-state', state);
    const msg = this.ui.msg;
    msg.textContent = message;
    msg.hidden = message === '';
    this.emit('statechange', { state, message });
  }

  private emit(name: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }
}
