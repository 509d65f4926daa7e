/** Popcast's web player: `<popcast-player>` and `create()`, in one ES module served at `/player.js`. */

import { PopcastPlayer, type PlayerOptions } from './player';

export { PopcastPlayer };
export type { LatencyDetail, PlayerOptions, PlayerState, PlayerStats } from './player';
export { Catchup, catchupConfig } from './catchup';
export { EdgeSet, parsePlay } from './edges';

if (typeof customElements !== 'undefined' && !customElements.get('popcast-player')) {
  customElements.define('popcast-player', PopcastPlayer);
}

/**
 * Puts a player for `opts.event` into `el` (or makes `el` one when it is a
 * `<popcast-player>`) and starts it. Listen on the returned element for `ready`,
 * `playing`, `stall`, `latency`, `error`, `failover` and `statechange`.
 */
export function create(el: HTMLElement, opts: PlayerOptions): PopcastPlayer {
  let player: PopcastPlayer;
  if (el instanceof PopcastPlayer) {
    player = el;
  } else {
    player = document.createElement('popcast-player') as PopcastPlayer;
    el.replaceChildren(player);
  }
  player.start(opts);
  return player;
}
