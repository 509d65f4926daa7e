/** Edge selection: the places `/play/{event}` offers, which one serves now, and where to go when it fails. */

/** One edge an event can be watched from. */
export interface Edge {
  node: string;
  region: string;
  /** The multivariant playlist's URL (with the viewer's token when there is one). */
  url: string;
  /** `scheme://host:port` of `url`: what is swapped when another edge takes over. */
  base: string;
  /** Viewers ÷ capacity at the edge's last heartbeat. */
  load: number;
}

/** `/play` answered something that is not its contract. */
export class PlayAnswerError extends Error {
  constructor(what: string) {
    super(`the /play answer ${what}`);
    this.name = 'PlayAnswerError';
  }
}

function edge(v: unknown, where: string): Edge {
  if (typeof v !== 'object' || v === null) throw new PlayAnswerError(`has no object at ${where}`);
  const o = v as Record<string, unknown>;
  const str = (k: string): string => {
    const s = o[k];
    if (typeof s !== 'string' || s.length === 0 || s.length > 2048) {
      throw new PlayAnswerError(`has no ${k} string at ${where}`);
    }
    return s;
  };
  const url = str('url');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PlayAnswerError(`has an invalid url at ${where}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new PlayAnswerError(`has a url that is not http(s) at ${where}`);
  }
  const load = typeof o.load === 'number' && Number.isFinite(o.load) ? o.load : 1;
  return { node: str('node_id'), region: str('region'), url, base: parsed.origin, load };
}

/** The edges of a `/play/{event}?format=json` answer, best first (as the origin ranked them). */
export function parsePlay(answer: unknown): Edge[] {
  if (typeof answer !== 'object' || answer === null) throw new PlayAnswerError('is not an object');
  const a = answer as Record<string, unknown>;
  const out = [edge(a.primary, 'primary')];
  const fallbacks = a.fallbacks ?? [];
  if (!Array.isArray(fallbacks)) throw new PlayAnswerError('has fallbacks that are not a list');
  fallbacks.slice(0, 32).forEach((f, i) => out.push(edge(f, `fallbacks[${i}]`)));
  // One entry per node, the first (best-ranked) kept.
  return out.filter((e, i) => out.findIndex((o) => o.node === e.node) === i);
}

/**
 * The edges a player may use and the one serving it. An edge that fails is put aside for
 * `cooldownMs`; the next one in the origin's order takes over. Requests made for any known
 * edge are sent to the serving one (`rewrite`), so a player keeps its place in the stream
 * when the edge under it changes.
 */
export class EdgeSet {
  private edges: Edge[];
  private index = 0;
  private failedAt = new Map<string, number>();

  constructor(
    edges: Edge[],
    private readonly cooldownMs = 15_000,
  ) {
    if (edges.length === 0) throw new RangeError('an edge set needs at least one edge');
    this.edges = edges;
  }

  get active(): Edge {
    return this.edges[this.index];
  }

  get all(): readonly Edge[] {
    return this.edges;
  }

  /**
   * `node` failed at `nowMs`. When it is the serving edge, the next edge not failed within
   * the cooldown serves instead and is returned; null when `node` was not serving (a late
   * error from before a switch) or when no other edge is usable (ask `/play` again).
   */
  fail(node: string, nowMs: number): Edge | null {
    this.failedAt.set(node, nowMs);
    if (this.active.node !== node) return null;
    for (let step = 1; step < this.edges.length; step++) {
      const i = (this.index + step) % this.edges.length;
      const at = this.failedAt.get(this.edges[i].node);
      if (at === undefined || nowMs - at >= this.cooldownMs) {
        this.index = i;
        return this.edges[i];
      }
    }
    return null;
  }

  /**
   * A fresh list from `/play`: the serving edge stays when it is still offered and has not
   * failed within the cooldown; otherwise the best usable one serves. Returns whether the
   * serving edge changed.
   */
  replace(edges: Edge[], nowMs: number): boolean {
    if (edges.length === 0) return false;
    const current = this.active.node;
    const usable = (e: Edge) => {
      const at = this.failedAt.get(e.node);
      return at === undefined || nowMs - at >= this.cooldownMs;
    };
    this.edges = edges;
    let i = edges.findIndex((e) => e.node === current && usable(e));
    if (i < 0) i = edges.findIndex(usable);
    this.index = Math.max(0, i);
    return this.active.node !== current;
  }

  /** `url` aimed at the serving edge when it names any known edge; other URLs unchanged. */
  rewrite(url: string): string {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return url;
    }
    const active = this.active.base;
    if (u.origin === active || !this.edges.some((e) => e.base === u.origin)) return url;
    return active + u.pathname + u.search + u.hash;
  }

  /** Which known edge `url` is aimed at, if any. */
  nodeOf(url: string): string | null {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      return null;
    }
    return this.edges.find((e) => e.base === origin)?.node ?? null;
  }
}
