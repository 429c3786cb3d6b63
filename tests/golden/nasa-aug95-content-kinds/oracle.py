"""Independent check of expected/out.jsonl: the same question in plain Python over the raw log.

python3 oracle.py ../../../../shared/data/nasa-http/NASA_access_log_Aug95.first20000.log | diff - expected/out.jsonl
"""
import re, json, sys, collections, datetime
rx = re.compile(r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(.*)" (\d{3}) (\S+)\s*$')
agg = collections.defaultdict(lambda: [0, 0])
bad = 0
for line in open(sys.argv[1], encoding='latin-1'):
    m = rx.match(line.rstrip('\n'))
    if not m:
        bad += 1; continue
    ts = datetime.datetime.strptime(m.group(4), '%d/%b/%Y:%H:%M:%S %z').astimezone(datetime.timezone.utc)
    req = m.group(5).split(' ')
    method = req[0]; path = req[1] if len(req) > 1 else ''
    status = int(m.group(6)); b = m.group(7)
    if method.upper() != 'GET' or not (200 <= status <= 299): continue
    if re.search(r'\.(gif|jpe?g|xbm)$', path, re.I): kind = 'image'
    elif '.htm' in path or path.endswith('/'): kind = 'page'
    else: kind = 'other'
    hour = ts.replace(minute=0, second=0)
    k = (hour, kind)
    agg[k][0] += 1
    agg[k][1] += (0 if b == '-' else int(b)) // 1024
for (hour, kind), (c, kib) in sorted(agg.items()):
    end = hour + datetime.timedelta(hours=1)
    f = lambda t: t.strftime('%Y-%m-%dT%H:%M:%SZ')
    print(json.dumps({"window_start": f(hour), "window_end": f(end), "kind": kind, "count": c, "kib": kib}, separators=(',', ':')))
print("unmatched", bad, file=sys.stderr)
