"""Independent check of expected/*.jsonl: the same questions in plain Python over the raw CSV,
every window ranked from scratch (the file is in time order: nothing is late).

python3 oracle.py ../../../../shared/data/clickstream/taobao_UserBehavior.head110300.csv out | diff - expected/out.jsonl
python3 oracle.py ../../../../shared/data/clickstream/taobao_UserBehavior.head110300.csv categories | diff - expected/categories.jsonl
"""
import collections, csv, datetime, json, sys

rows = [(int(u), int(i), int(c), b, int(t)) for u, i, c, b, t in csv.reader(open(sys.argv[1]))]
f = lambda t: datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
out = lambda d: print(json.dumps(d, separators=(',', ':')))

if sys.argv[2] == 'out':
    # top 3 items by views, 1 h windows every 5 min, ties by item id
    size, slide = 3600, 300
    views = collections.defaultdict(collections.Counter)
    for u, i, c, b, t in rows:
        if b != 'pv':
            continue
        end = (t // slide + 1) * slide
        while end - size <= t:
            views[end][i] += 1
            end += slide
    for end, items in sorted(views.items()):
        ranked = sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        for rank, (item, n) in enumerate(ranked, 1):
            out({"window_start": f(end - size), "window_end": f(end), "rank": rank,
                 "item_id": item, "count": n})
else:
    # per behaviour, top 3 categories by distinct users, 30 min tumbling windows
    size = 1800
    users = collections.defaultdict(lambda: collections.defaultdict(set))
    for u, i, c, b, t in rows:
        users[(t // size * size + size, b)][c].add(u)
    for (end, b), cats in sorted(users.items()):
        ranked = sorted(((c, len(us)) for c, us in cats.items()), key=lambda kv: (-kv[1], kv[0]))[:3]
        for rank, (cat, n) in enumerate(ranked, 1):
            out({"window_start": f(end - size), "window_end": f(end), "behavior": b, "rank": rank,
                 "category_id": cat, "users": n})
