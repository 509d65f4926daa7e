/** The player's shadow DOM: markup and styles (no external assets, so it drops into any page). */

export const STYLE = `
:host { display: block; position: relative; background: #000; color: #f2f2f2;
  font: 14px/1.3 system-ui, -apple-system, "Segoe UI", sans-serif; aspect-ratio: 16 / 9; overflow: hidden; }
:host([hidden]) { display: none; }
.box { position: absolute; inset: 0; }
video { width: 100%; height: 100%; object-fit: contain; background: #000; display: block; }
.msg { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
  padding: 1em; text-align: center; font-size: 1.1em; background: rgba(0,0,0,.72); }
.msg[hidden] { display: none; }
.bar { position: absolute; left: 0; right: 0; bottom: 0; display: flex; gap: .5em; align-items: center;
  padding: .5em .6em; background: linear-gradient(transparent, rgba(0,0,0,.7)); }
.grow { flex: 1; }
button, select { font: inherit; color: inherit; background: rgba(255,255,255,.14); border: 0;
  border-radius: 4px; padding: .25em .6em; cursor: pointer; }
button:hover, select:hover { background: rgba(255,255,255,.26); }
button[hidden], select[hidden] { display: none; }
select option { color: #000; }
.live { font-weight: 600; }
.live .dot { color: #e5242b; }
.live.behind .dot { color: #999; }
.lat { font-weight: 400; opacity: .85; margin-left: .3em; }
:host([data-state="ended"]) .bar, :host([data-state="not-allowed"]) .bar,
:host([data-state="not-found"]) .bar, :host([data-state="waiting"]) .bar { display: none; }
`;

export const TEMPLATE = `
<div class="box" part="box">
  <video playsinline muted autoplay part="video"></video>
  <div class="msg" role="status" aria-live="polite" part="message" hidden></div>
  <div class="bar" part="controls">
    <button class="toggle" title="Play or pause" aria-label="Play or pause">❚❚</button>
    <button class="live" title="Jump to live" aria-label="Jump to live"><span class="dot">●</span> LIVE<span class="lat"></span></button>
    <button class="unmute" title="Unmute" hidden>🔇 Tap to unmute</button>
    <span class="grow"></span>
    <select class="quality" title="Quality" aria-label="Quality" hidden></select>
    <button class="fs" title="Full screen" aria-label="Full screen">⛶</button>
  </div>
</div>
`;
