"""Independent check of expected/out.jsonl: the same question in plain Python over the raw log,
every window ranked from scratch (no record of this file is late at 30 s).

python3 oracle.py ../../../../shared/data/nasa-http/NASA_access_log_Aug95.first20000.log | diff - expected/out.jsonl
"""
import collections, datetime, json, re, sys

rx = re.compile(r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(.*)" (\d{3}) (\S+)\s*$')
SIZE, SLIDE = 3600, 900
windows = collections.defaultdict(lambda: collections.defaultdict(int))
for line in open(sys.argv[1], encoding='latin-1'):
    m = rx.match(line.rstrip('\n'))
    if not m:
        continue
    ts = int(datetime.datetime.strptime(m.group(4), '%d/%b/%Y:%H:%M:%S %z').timestamp())
    req = m.group(5).split(' ')
    path = req[1] if len(req) > 1 else None
    cls = int(m.group(6)) // 100
    b = 0 if m.group(7) == '-' else int(m.group(7))
    end = (ts // SLIDE + 1) * SLIDE
    while end - SIZE <= ts:
        windows[(end, cls)][path] += b
        end += SLIDE
f = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
for (end, cls), paths in sorted(windows.items()):
    # most bytes first, then path ascending (a missing path first)
    ranked = sorted(paths.items(), key=lambda kv: (-kv[1], kv[0] is not None, kv[0] or ''))
    for rank, (path, b) in enumerate(ranked[:3], 1):
        print(json.dumps({"window_start": f(end - SIZE), "window_end": f(end), "class": cls,
                          "rank": rank, "path": path, "bytes": b}, separators=(',', ':')))
