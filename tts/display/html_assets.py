"""The style and script of a `tts view` page, inline (the page opens from disk: no server, no network)."""

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.4em; margin: 0 0 .3em; } h3 { margin: 1em 0 .3em; font-size: 1.05em; }
.meta, .note { color: #666; font-size: .9em; }
.filters { position: sticky; top: 0; background: #f5f5f7; padding: .5em .8em; border: 1px solid #ddd;
  border-radius: 6px; margin: .8em 0; z-index: 2; }
.filters label { margin-right: 1.2em; }
table { border-collapse: collapse; font-size: .92em; margin: .3em 0; }
th, td { border: 1px solid #d8d8d8; padding: 3px 7px; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; }
details.task { border: 1px solid #ddd; border-radius: 6px; margin: 4px 0; }
details.task > summary { cursor: pointer; padding: 5px 9px; display: grid;
  grid-template-columns: 16em 12em 1fr 6em 7em 9em; gap: .6em; align-items: baseline; }
details.task[open] > summary { background: #f0f4ff; }
details.task > .body { padding: .3em 1em 1em; }
.right { color: #0a7d28; font-weight: 600; } .wrong { color: #c0182d; font-weight: 600; }
.unknown { color: #888; }
.bar { display: inline-block; height: .8em; background: #8fb3ff; vertical-align: middle; min-width: 2px; }
.bar.win { background: #2d9c52; } .bar.sel { background: #f2a93b; } .bar.lose { background: #d7dbe3; }
.round { display: flex; flex-wrap: wrap; gap: .6em; margin: .3em 0 .8em; }
.contest { border: 1px solid #ccd; border-radius: 5px; padding: .3em .6em; min-width: 16em; }
.contest.judge-wrong { border-color: #c0182d; background: #fff3f4; }
.member { white-space: nowrap; } .member.win { font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(22em, 1fr)); gap: .6em; }
.sidebyside { display: grid; grid-auto-flow: column; grid-auto-columns: minmax(20em, 1fr); gap: .6em;
  overflow-x: auto; }
.card { border: 1px solid #ddd; border-radius: 5px; padding: .4em .6em; background: #fcfcfd; min-width: 0; }
pre { white-space: pre-wrap; word-break: break-word; margin: .2em 0; font-size: .88em;
  background: #f6f6f8; padding: .3em .5em; border-radius: 4px; max-height: 28em; overflow: auto; }
.msg b { font-size: .8em; text-transform: uppercase; color: #555; }
.msg.system pre, .msg.developer pre { background: #fff8e6; } .msg.assistant pre { background: #eef6ee; }
.said pre { background: #eaf1ff; }
ins { background: #c9f2d0; text-decoration: none; } del { background: #ffd3d8; }
.error { background: #fff0f0; border: 1px solid #e7a3ab; padding: .4em .6em; border-radius: 5px; }
details.path { margin: .2em 0 .2em 1em; } details.call { margin: .1em 0 .1em 1em; }
.cached { color: #8a6d00; } .tag { font-size: .8em; padding: 0 .4em; border-radius: 3px; background: #eee; }
"""

JS = """
(function () {
  var details = JSON.parse(document.getElementById('tts-details').textContent);
  var messages = JSON.parse(document.getElementById('tts-messages').textContent);
  var rows = Array.prototype.slice.call(document.querySelectorAll('details.task'));
  function fillMessages(div) {
    if (div.dataset.filled) return;
    div.dataset.filled = '1';
    div.dataset.ids.split(' ').forEach(function (id) {
      var m = messages[id];
      if (!m) return;
      var box = document.createElement('div'), head = document.createElement('b'), pre = document.createElement('pre');
      box.className = 'msg ' + m.role; head.textContent = m.role; pre.textContent = m.content;
      box.appendChild(head); box.appendChild(pre); div.appendChild(box);
    });
  }
  function fill(row) {
    var body = row.querySelector('.body');
    if (body.dataset.filled) return;
    body.innerHTML = details[+row.dataset.i];
    body.dataset.filled = '1';
    Array.prototype.forEach.call(body.querySelectorAll('.msgs'), fillMessages);
  }
  rows.forEach(function (row) { row.addEventListener('toggle', function () { if (row.open) fill(row); }); });
  var wrong = document.getElementById('f-wrong'), judge = document.getElementById('f-judge');
  var query = document.getElementById('f-query'), count = document.getElementById('f-count');
  function apply() {
    var q = query.value.toLowerCase(), shown = 0;
    rows.forEach(function (row) {
      var ok = (!wrong.checked || row.dataset.correct === 'false') &&
               (!judge.checked || +row.dataset.judgewrong > 0) &&
               (!q || row.dataset.search.indexOf(q) >= 0);
      row.hidden = !ok; shown += ok ? 1 : 0;
    });
    count.textContent = shown;
  }
  [wrong, judge].forEach(function (el) { el.addEventListener('change', apply); });
  query.addEventListener('input', apply);
  var m = location.hash.match(/open=([^&]*)/);
  if (m) {
    var want = decodeURIComponent(m[1]);
    rows.forEach(function (row) { if (want === 'all' || row.dataset.id === want) { fill(row); row.open = true; } });
  }
  if (/wrong=1/.test(location.hash)) { wrong.checked = true; }
  if (/judge=1/.test(location.hash)) { judge.checked = true; }
  apply();
  document.body.dataset.ready = '1';
})();
"""

CSS += """
figure { display: inline-block; margin: 1em 1em 0 0; } img { max-width: 100%; }
table.comparison td { text-align: right; } table.comparison td:first-child, table.comparison td:nth-child(2) {
  text-align: left; }
tr.pareto td:first-child { font-weight: bold; }
"""


def scoped(css: str, scope: str = ".tts-view") -> str:
    """`css` with every selector under `scope`, for a fragment inside someone else's page (a notebook)."""
    import re

    def one(match: re.Match[str]) -> str:
        sels = [s.strip() for s in match.group(1).split(",")]
        return ", ".join(scope if s == "body" else f"{scope} {s}" for s in sels) + " {"

    return re.sub(r"([^{}]+)\{", one, css)
