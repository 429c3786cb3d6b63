// weir's dashboard: follows /api/live (a snapshot, then numbered updates) and draws each
// output as the server describes it: ranked lists with each key's move, charts of windowed
// values, feeds of rows; and the pipeline's health. Plain DOM, no framework; every value from
// the stream is set as text, never as HTML.
'use strict';

const token = new URLSearchParams(location.search).get('token');
const panels = new Map();
let seq = 0;
let ended = false;

const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
const fmt = (v) => (typeof v === 'number' ? v.toLocaleString('en') : v === null ? '∅' : String(v));
const time = (ms) => (ms === null || ms === undefined ? '–' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z');
const ms = (v) => (typeof v === 'number' ? v : Date.parse(v));
function duration(msec) {
  if (msec === null || msec === undefined) return '–';
  const s = msec / 1000;
  if (s < 60) return s.toFixed(1) + ' s';
  if (s < 3600) return (s / 60).toFixed(1) + ' min';
  if (s < 86400) return (s / 3600).toFixed(1) + ' h';
  return (s / 86400).toFixed(1) + ' d';
}
// 1234567 → "1.2M": axis labels that fit.
function compact(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return +(v / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return +(v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return +(v / 1e3).toFixed(1) + 'k';
  return fmt(v);
}
function status(text, cls) {
  const s = $('status');
  s.textContent = text;
  s.className = 'status ' + cls;
}

// Rows of one output, trimmed as the server trims them: the last `keep` windows (by
// window_end) of a list or chart, the last `keep` rows of a feed.
class Rows {
  constructor(d) {
    this.view = d.view;
    this.keep = d.keep;
    this.rows = [];
  }
  add(rows) {
    for (const r of rows) {
      if (this.view !== 'feed') r.__end = ms(r.window_end);
      this.rows.push(r);
    }
    if (this.view === 'feed') {
      if (this.rows.length > this.keep) this.rows.splice(0, this.rows.length - this.keep);
    } else {
      const ends = [...new Set(this.rows.map((r) => r.__end))].sort((a, b) => a - b);
      if (ends.length > this.keep) {
        const cut = ends[ends.length - this.keep];
        this.rows = this.rows.filter((r) => r.__end >= cut);
      }
    }
  }
}

class Panel {
  constructor(d) {
    this.d = d;
    this.data = new Rows(d);
    this.root = el('section', 'panel');
    this.root.dataset.output = d.name;
    this.root.dataset.view = d.view;
    this.root.append(el('h2', null, d.title));
    this.sub = el('div', 'sub');
    this.root.append(this.sub);
    this.body = el('div');
    this.root.append(this.body);
    this.dirty = false;
  }
  add(rows) {
    this.data.add(rows);
    this.d.total += rows.length;
    if (!this.dirty) {
      this.dirty = true;
      requestAnimationFrame(() => {
        this.dirty = false;
        this.draw();
      });
    }
  }
}

// A top-K: one list per group at the newest window, each key marked with its move since the
// window before: ▲n, ▼n, or "new".
class TopPanel extends Panel {
  constructor(d) {
    super(d);
    const names = d.columns.map((c) => c[0]);
    const rank = names.indexOf('rank');
    const end = names.indexOf('window_end');
    this.groups = names.slice(end + 1, rank);
    this.keys = names.slice(rank + 1, names.length - 1);
    this.value = names[names.length - 1];
    this.before = new Map();
  }
  draw() {
    const rows = this.data.rows;
    if (!rows.length) {
      this.sub.textContent = 'waiting for the first window…';
      return;
    }
    const ends = [...new Set(rows.map((r) => r.__end))].sort((a, b) => a - b);
    const last = ends[ends.length - 1];
    const prev = ends.length > 1 ? ends[ends.length - 2] : null;
    const gkey = (r) => this.groups.map((g) => fmt(r[g])).join(' · ');
    const kkey = (r) => this.keys.map((k) => fmt(r[k])).join(' · ');
    const previous = new Map();
    for (const r of rows) if (r.__end === prev) previous.set(gkey(r) + '\u0000' + kkey(r), r.rank);
    const groups = new Map();
    for (const r of rows) {
      if (r.__end !== last) continue;
      const g = gkey(r);
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(r);
    }
    this.root.dataset.windowEnd = String(last);
    this.sub.textContent = `window ending ${time(last)} · by ${this.value}`;
    const body = el('div');
    for (const [g, list] of [...groups].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (this.groups.length) body.append(el('h3', null, g));
      const ol = el('ol', 'top');
      for (const r of list.sort((a, b) => a.rank - b.rank)) {
        const key = kkey(r);
        const li = el('li');
        li.dataset.key = key;
        li.dataset.rank = r.rank;
        li.append(el('span', 'rank', r.rank), el('span', 'key', key), el('span', 'value', fmt(r[this.value])));
        const was = prev === null ? undefined : previous.get(g + '\u0000' + key);
        let move = el('span', 'move', '');
        if (prev !== null && was === undefined) move = el('span', 'move new', 'new');
        else if (was > r.rank) move = el('span', 'move up', '▲' + (was - r.rank));
        else if (was < r.rank) move = el('span', 'move down', '▼' + (r.rank - was));
        li.append(move);
        // A row whose rank or value changed since the last draw flashes once.
        const seen = this.before.get(g + '\u0000' + key);
        const now = r.rank + '/' + r[this.value];
        if (seen !== undefined && seen !== now) li.classList.add('flash');
        this.before.set(g + '\u0000' + key, now);
        ol.append(li);
      }
      body.append(ol);
    }
    this.body.replaceWith(body);
    this.body = body;
    requestAnimationFrame(() => body.querySelectorAll('.flash').forEach((x) => x.classList.remove('flash')));
  }
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];
const MAX_LINES = 8;

// A chart: x is window_end, one line per distinct value of the series columns, y the value
// column; the MAX_LINES lines with the largest values in the newest window are drawn.
class ChartPanel extends Panel {
  constructor(d) {
    super(d);
    this.root.classList.add('wide');
    this.chart = null;
    this.lines = '';
  }
  draw() {
    const rows = this.data.rows;
    const name = (r) => (this.d.series.length ? this.d.series.map((c) => fmt(r[c])).join(' · ') : this.d.y);
    const xs = [...new Set(rows.map((r) => r.__end))].sort((a, b) => a - b);
    if (!xs.length) {
      this.sub.textContent = 'waiting for the first window…';
      return;
    }
    const at = new Map(xs.map((x, i) => [x, i]));
    const series = new Map();
    for (const r of rows) {
      const n = name(r);
      if (!series.has(n)) series.set(n, new Array(xs.length).fill(null));
      const v = r[this.d.y];
      const ys = series.get(n);
      const i = at.get(r.__end);
      ys[i] = (ys[i] || 0) + (typeof v === 'number' ? v : 0);
    }
    const lastOf = (ys) => { for (let i = ys.length - 1; i >= 0; i--) if (ys[i] !== null) return ys[i]; return 0; };
    const ranked = [...series].sort((a, b) => lastOf(b[1]) - lastOf(a[1]) || (a[0] < b[0] ? -1 : 1));
    const shown = ranked.slice(0, MAX_LINES).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    const more = ranked.length - shown.length;
    this.sub.textContent = `${this.d.y} per window` + (this.d.series.length ? ` by ${this.d.series.join(', ')}` : '') +
      ` · ${xs.length} windows to ${time(xs[xs.length - 1])}` + (more > 0 ? ` · ${more} more lines not drawn` : '');
    this.root.dataset.points = String(xs.length);
    const data = [xs.map((x) => x / 1000), ...shown.map((s) => s[1])];
    const lines = shown.map((s) => s[0]).join('\u0000');
    const width = Math.max(300, this.root.clientWidth - 32);
    if (!this.chart || lines !== this.lines) {
      if (this.chart) this.chart.destroy();
      this.body.textContent = '';
      this.lines = lines;
      this.chart = new uPlot({
        width, height: 240,
        scales: { x: { time: true } },
        tzDate: (t) => uPlot.tzDate(new Date(t * 1000), 'Etc/UTC'), // times in UTC, as everywhere on the page
        series: [{}, ...shown.map((s, i) => ({ label: s[0], stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false }))],
        axes: [{}, { size: 56, values: (u, vals) => vals.map(compact) }],
        legend: { live: false },
      }, data, this.body);
    } else {
      if (this.chart.width !== width) this.chart.setSize({ width, height: 240 });
      this.chart.setData(data);
    }
  }
}

// A feed: the newest rows first, every column.
class FeedPanel extends Panel {
  constructor(d) {
    super(d);
    this.root.classList.add('wide');
  }
  draw() {
    const names = this.d.columns.map((c) => c[0]);
    const nums = new Set(this.d.columns.filter((c) => c[1] === 'number').map((c) => c[0]));
    this.sub.textContent = `${fmt(this.d.total)} rows · newest first · last ${this.d.keep} kept`;
    const wrap = el('div', 'feed');
    const table = el('table');
    const head = el('tr');
    for (const n of names) head.append(el('th', nums.has(n) ? 'n' : null, n));
    table.append(el('thead'));
    table.firstChild.append(head);
    const tbody = el('tbody');
    for (const r of this.data.rows.slice(-100).reverse()) {
      const tr = el('tr');
      for (const n of names) tr.append(el('td', nums.has(n) ? 'n' : null, fmt(r[n])));
      tbody.append(tr);
    }
    table.append(tbody);
    wrap.append(table);
    this.body.replaceWith(wrap);
    this.body = wrap;
  }
}

const VIEWS = { top: TopPanel, chart: ChartPanel, feed: FeedPanel };

function snapshot(m) {
  seq = m.seq;
  const box = $('outputs');
  for (const p of panels.values()) p.root.remove();
  panels.clear();
  $('empty').hidden = m.outputs.length > 0;
  for (const d of m.outputs) {
    const p = new (VIEWS[d.view] || FeedPanel)(d);
    panels.set(d.name, p);
    box.append(p.root);
    const total = d.total;
    p.add(d.rows);
    p.d.total = total;
  }
  health(m.health);
}

function health(h) {
  if (!h) return;
  $('summary').textContent = `up ${duration(h.uptime_s * 1000)} · ${h.clients} page${h.clients === 1 ? '' : 's'} open`;
  const tbody = el('tbody');
  tbody.id = 'nodes';
  for (const n of h.nodes) {
    const tr = el('tr');
    tr.dataset.node = n.name;
    const cells = [
      [n.name], [n.kind], [fmt(Math.round(n.in_per_s)), 'n'], [fmt(Math.round(n.out_per_s)), 'n'],
      [fmt(n.records_in), 'n'], [fmt(n.records_out), 'n'], [fmt(n.malformed), n.malformed ? 'n bad' : 'n'],
      [fmt(n.late), n.late ? 'n bad' : 'n'], [time(n.watermark_ms), 'n'], [duration(n.watermark_lag_ms), 'n'],
    ];
    for (const [t, cls] of cells) tr.append(el('td', cls || null, t));
    tbody.append(tr);
  }
  $('nodes').replaceWith(tbody);
  const c = h.checkpoint;
  $('checkpoint').textContent = !c ? 'no checkpoints (run with --checkpoint-dir to take them)'
    : `checkpoints: ${c.completed} completed, ${c.failed} failed` +
      (c.age_s === null ? '' : ` · newest #${c.last_epoch}, ${duration(c.age_s * 1000)} ago`);
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const url = `${proto}//${location.host}/api/live` + (token ? `?token=${encodeURIComponent(token)}` : '');
  const ws = new WebSocket(url);
  ws.onopen = () => status('live', 'ok');
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === 'snapshot') snapshot(m);
    else if (m.type === 'rows') {
      if (m.seq <= seq) return; // already in the snapshot
      seq = m.seq;
      const p = panels.get(m.output);
      if (p) p.add(m.rows);
    } else if (m.type === 'health') health(m.health);
    else if (m.type === 'end') {
      ended = true;
      status('pipeline stopped', 'off');
    }
  };
  ws.onclose = () => {
    if (ended) return;
    status('reconnecting…', 'warn');
    setTimeout(connect, 1000);
  };
}

connect();
