"""api: the REST API under load — gunicorn on the scale's dataset, wrk on loopback.

gunicorn (``pharmacrm.wsgi``, 2 sync workers, DEBUG off, access log off) serves the scale's
database on a free loopback port; wrk (2 threads, 8 connections, a fixed duration) loads it with a
Lua script that varies every request:

- customer lookup, ``GET /api/v1/customers/?phone=``: phones of the base's customers in four
  notations (``8 (912) 345-67-89``, ``+7 912 345 67 89``, ``8912...``, ``+7912...``);
- its baseline, in the same run and the same gunicorn: the same lookup as a bare view
  (``.values()`` + ``JsonResponse`` behind the same token check, ``bench/api_urls.py``, mounted by
  the bench-only settings ``bench/api_settings.py``), run before and after the DRF endpoint; the
  run with the lower p99 is the baseline (the stricter one);
- checkout quote, ``POST /api/v1/checkout/quote/``: baskets of 1-4 lines of the catalogue's SKUs at
  prices the tills charged, for the base's customers, by id (3 in 4) or by phone;
- order creation, ``POST /api/v1/orders/``: completed app orders (pick-up in a store, or delivery)
  with unique numbers and an ``Idempotency-Key`` each, so every one accrues bonuses.

First, a DRF ping (no authentication, no database, ``/bench/ping/``) measures the machine's floor,
to compare it with PERFORMANCE.md's reference machine. Every request is a valid one: any answer
other than 2xx fails the benchmark. Each run is preceded by a short warm-up (not counted). After
the load, each endpoint is also called in the benchmark's own process through Django's WSGI handler
(inside a transaction rolled back): queries, CPU and PostgreSQL time per request, where the time
goes. The API clients are created with ``create_api_client`` and a
request limit far above the load (per second, so the throttle's request log stays short).
Afterwards ``manage.py check_bonus_ledger`` must pass, then the benchmark deletes what it created
(its orders, their lines and ledger rows, the accounts it opened, its API clients and their
idempotency records) and puts back the accounts and lots its orders changed, so the dataset stays
the scale's dataset. An interrupted run is cleaned up by the next one.

gunicorn, wrk and the CPU accounting are in ``bench/api_load.py``; the snapshot, the ledger check
and the clean-up in ``bench/api_cleanup.py``.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

from bench.api_cleanup import (
    CLIENT_PREFIX,
    ORDER_PREFIX,
    check_ledger,
    cleanup,
    orders_written,
    snapshot,
    verify_restored,
)
from bench.api_load import (
    CONNECTIONS,
    THREADS,
    WORKERS,
    cpu_line,
    gunicorn,
    redis_cache_url,
    write_lua,
    wrk_run,
)
from bench.harness import ROOT, Context, Result

ORDER = 60
DESCRIPTION = "REST API under wrk: customer lookup (vs a bare view), checkout quote, orders"
TARGET_SCALE = "full"
TARGET_READ_RPS = 500  # lookup and quote, the REST API issue
TARGET_READ_P99_MS = 30.0
TARGET_ORDER_RPS = 200
TARGET_ORDER_P99_MS = 60.0
TARGET_BARE_RATIO = 1.5  # the DRF lookup's p99 against the bare view's
DURATION_S = {"ci": 3, "small": 10, "full": 20}
WARMUP_S = {"ci": 1, "small": 2, "full": 3}
POOL = {"ci": 2_000, "small": 20_000, "full": 20_000}  # customers each read scenario draws on
ORDER_POOL = {"ci": 500, "small": 5_000, "full": 10_000}  # customers who place orders
BASKETS = 2_000
PROBE = {"ci": 20, "small": 100, "full": 100}  # requests per endpoint timed in-process
SEED = 2026
# Far above the load, and per second: DRF's throttle keeps a list of the client's requests in the
# window and rewrites it on every request, so a per-minute limit would make it ~60x longer.
RATE = "1000000/s"


def run(ctx: Context) -> list[Result]:
    from django.db import connection

    ctx.ensure_dataset()
    if connection.vendor != "postgresql":  # pragma: no cover - the harness is PostgreSQL only
        raise RuntimeError("the API benchmark needs PostgreSQL")
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install -y wrk)")
    applies = ctx.scale == TARGET_SCALE and not ctx.in_ci
    duration, warmup = DURATION_S[ctx.scale], WARMUP_S[ctx.scale]

    cleanup()  # leftovers of an interrupted earlier run
    print("   Choosing customers, baskets and stores (not timed)...")
    data = _prepare(ctx)
    data["code"] = _code_state()  # what gunicorn loads
    print("   manage.py check_bonus_ledger before the run...")
    ledger_before = check_ledger(ctx)
    if ledger_before["returncode"] != 0:
        raise RuntimeError(
            "the bonus ledger of this database has differences before the run (not this "
            "benchmark's doing; another benchmark running on it?):\n" + ledger_before["output"]
        )
    data["ledger_before_s"] = ledger_before["seconds"]
    state = snapshot(data["order_customers"])
    run_id = f"{int(time.time()):x}"
    keep, finished = False, False
    try:
        tokens = _clients(run_id)
        work = ctx.data_dir / f"api_{ctx.scale}_{run_id}"
        work.mkdir(parents=True, exist_ok=True)
        scripts = _scripts(work, data, tokens, run_id)
        cache_url = redis_cache_url()
        load_before = os.getloadavg()
        runs: dict[str, dict] = {}
        with gunicorn(ctx.database_url, work, cache_url) as server:
            print(f"   gunicorn: {WORKERS} sync workers on {server['url']}")
            plan = [
                ("ping", "ping"),
                ("bare", "bare"),
                ("lookup", "lookup"),
                ("bare_after", "bare"),
                ("quote", "quote"),
                ("orders", "orders"),
            ]
            for name, scenario in plan:
                wrk_run(wrk, scripts[scenario]["warmup"], server, warmup)
                print(f"   wrk {name}: {duration} s...")
                outcome = wrk_run(wrk, scripts[scenario]["measured"], server, duration)
                runs[name] = outcome
                print(
                    f"   {outcome['rps']:,.0f} req/s, p50 {outcome['p50']:.2f} ms, "
                    f"p99 {outcome['p99']:.2f} ms, {outcome['non2xx']} non-2xx, "
                    f"{outcome['socket_errors']} socket errors; {cpu_line(outcome)}"
                )
        load_after = os.getloadavg()
        print("   Per request, in this process (queries, CPU, SQL time)...")
        probe = _probe(data, tokens, cache_url, run_id, PROBE[ctx.scale])
        bad = {n: r for n, r in runs.items() if r["non2xx"] or r["socket_errors"]}
        if bad:
            raise RuntimeError(
                "answers other than 2xx for valid requests: "
                + "; ".join(
                    f"{n}: {r['non2xx']} non-2xx {r['codes']}, {r['socket_errors']} socket "
                    f"errors, e.g. {r['samples'][:1]}"
                    for n, r in bad.items()
                )
            )
        written = orders_written()
        print("   manage.py check_bonus_ledger...")
        ledger = check_ledger(ctx)
        if ledger["returncode"] != 0:
            keep = True
            raise RuntimeError(
                "check_bonus_ledger failed after the orders run (orders and ledger rows kept "
                f"for inspection; the next run of this benchmark removes them):\n{ledger['output']}"
            )
        finished = True
    finally:
        if not keep:
            cleanup()
            if finished:
                verify_restored(state)
            shutil.rmtree(ctx.data_dir / f"api_{ctx.scale}_{run_id}", ignore_errors=True)
    return _results(
        ctx, applies, data, runs, written, ledger, probe, cache_url, load_before, load_after
    )


# -- the traffic -----------------------------------------------------------------------------------


def _prepare(ctx: Context) -> dict:
    """Customers (with their phones), baskets of real SKUs at real prices, open stores."""
    from django.db import connection

    n, orders_n = POOL[ctx.scale], ORDER_POOL[ctx.scale]
    with connection.cursor() as cursor:
        # A fixed pseudo-random sample (md5 of the id): the same customers in every run.
        cursor.execute(
            "SELECT id, phone FROM customers_customer WHERE phone IS NOT NULL "
            "ORDER BY md5(id::text) LIMIT %s",
            [n],
        )
        lookup = cursor.fetchall()
        cursor.execute(
            "SELECT id, phone FROM customers_customer WHERE phone IS NOT NULL "
            "ORDER BY md5(id::text || 'quote') LIMIT %s",
            [n],
        )
        quote = cursor.fetchall()
        cursor.execute(
            "SELECT id FROM customers_customer ORDER BY md5(id::text || 'order') LIMIT %s",
            [orders_n],
        )
        order_customers = [c for (c,) in cursor.fetchall()]
        # Each product at a price a till charged for it (any one of its lines).
        cursor.execute(
            "SELECT p.sku, p.prescription_only, (SELECT l.price FROM customers_purchaseline l "
            "WHERE l.product_id = p.id AND l.price > 0 LIMIT 1) FROM customers_product p "
            "ORDER BY p.sku"
        )
        products = [(sku, rx, price) for sku, rx, price in cursor.fetchall() if price is not None]
        cursor.execute(
            "SELECT code FROM customers_store WHERE is_active AND code NOT LIKE 'BENCH-%%' "
            "ORDER BY code"
        )
        stores = [code for (code,) in cursor.fetchall()]
    if not (lookup and quote and order_customers and products and stores):
        raise RuntimeError("the dataset has no customers with phones, priced products or stores")
    rnd = random.Random(SEED)
    baskets = []
    for _ in range(BASKETS):
        lines = [
            {"sku": sku, "qty": rnd.choice(("1", "1", "1", "2")), "price": str(price)}
            for sku, _rx, price in rnd.sample(products, rnd.randint(1, 4))
        ]
        baskets.append(json.dumps(lines, separators=(",", ":")))
    return {
        "lookup": [(c, _notation(phone, rnd)) for c, phone in lookup],
        "quote": [(c, _notation(phone, rnd)) for c, phone in quote],
        "order_customers": order_customers,
        "baskets": baskets,
        "stores": stores,
        "products": len(products),
        "prescription_only": sum(1 for _sku, rx, _price in products if rx),
    }


def _notation(phone: str, rnd: random.Random) -> str:
    """The phone as people and systems write it: "+79123456789" in one of four notations."""
    d = phone[2:] if phone.startswith("+7") and len(phone) == 12 else None
    if d is None:
        return phone
    return rnd.choice(
        (
            f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
            f"+7 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}",
            f"8{d}",
            phone,
        )
    )


def _clients(run_id: str) -> dict[str, str]:
    """One API client per scenario (kind app), with only the scopes it needs; their tokens."""
    from django.core.management import call_command

    scopes = {"lookup": ["customers:read"], "quote": ["checkout:quote"], "orders": ["orders:write"]}
    tokens = {}
    for name, needed in scopes.items():
        out = io.StringIO()
        call_command(
            "create_api_client",
            f"{CLIENT_PREFIX}{name}-{run_id}",
            scopes=needed,
            kind="app",
            rate=RATE,
            stdout=out,
            stderr=io.StringIO(),
        )
        tokens[name] = out.getvalue().strip()
    return tokens


_LUA_LOOKUP = r"""
function request()
  local phone = PHONES[math.random(#PHONES)]
  return wrk.format("GET", PATH .. phone, {["Authorization"] = AUTH})
end
"""

_LUA_PING = r"""
function request()
  return wrk.format("GET", PATH)
end
"""

_LUA_QUOTE = r"""
function request()
  local body
  if math.random(4) == 1 then
    local phone = PHONES[math.random(#PHONES)]
    body = '{"customer_lookup":{"phone":"' .. phone .. '"},"lines":' ..
      BASKETS[math.random(#BASKETS)] .. '}'
  else
    body = '{"customer":' .. CUSTOMERS[math.random(#CUSTOMERS)] .. ',"lines":' ..
      BASKETS[math.random(#BASKETS)] .. '}'
  end
  return wrk.format("POST", PATH,
    {["Authorization"] = AUTH, ["Content-Type"] = "application/json"}, body)
end
"""

_LUA_ORDERS = r"""
function request()
  counter = counter + 1
  local number = NUMBER_PREFIX .. tid .. "-" .. counter
  local fulfilment
  if math.random(10) <= 3 then
    fulfilment = '"delivery":true'
  else
    fulfilment = '"store":"' .. STORES[math.random(#STORES)] .. '"'
  end
  local body = '{"customer":' .. CUSTOMERS[math.random(#CUSTOMERS)] .. ',"number":"' ..
    number .. '",' .. fulfilment .. ',"status":"completed","lines":' ..
    BASKETS[math.random(#BASKETS)] .. '}'
  return wrk.format("POST", PATH, {["Authorization"] = AUTH,
    ["Content-Type"] = "application/json", ["Idempotency-Key"] = number}, body)
end
"""


def _scripts(work: Path, data: dict, tokens: dict[str, str], run_id: str) -> dict:
    """Each scenario's script, twice: the warm-up (its own order numbers) and the measured run."""
    quote = urllib.parse.quote
    phones = [quote(p, safe="") for _c, p in data["lookup"]]
    scripts: dict[str, dict[str, Path]] = {}
    for phase in ("warmup", "measured"):
        common = {"SEED": SEED + (phase == "measured")}
        scripts.setdefault("lookup", {})[phase] = write_lua(
            work / f"lookup_{phase}.lua",
            _LUA_LOOKUP,
            PATH="/api/v1/customers/?phone=",
            PHONES=phones,
            AUTH=f"Token {tokens['lookup']}",
            **common,
        )
        scripts.setdefault("ping", {})[phase] = write_lua(
            work / f"ping_{phase}.lua", _LUA_PING, PATH="/bench/ping/", **common
        )
        scripts.setdefault("bare", {})[phase] = write_lua(
            work / f"bare_{phase}.lua",
            _LUA_LOOKUP,
            PATH="/bench/lookup/?phone=",
            PHONES=phones,
            AUTH=f"Token {tokens['lookup']}",
            **common,
        )
        scripts.setdefault("quote", {})[phase] = write_lua(
            work / f"quote_{phase}.lua",
            _LUA_QUOTE,
            PATH="/api/v1/checkout/quote/",
            PHONES=[p for _c, p in data["quote"]],
            CUSTOMERS=[c for c, _p in data["quote"]],
            BASKETS=data["baskets"],
            AUTH=f"Token {tokens['quote']}",
            **common,
        )
        scripts.setdefault("orders", {})[phase] = write_lua(
            work / f"orders_{phase}.lua",
            _LUA_ORDERS,
            PATH="/api/v1/orders/",
            NUMBER_PREFIX=f"{ORDER_PREFIX}{run_id}-{phase[0]}",
            CUSTOMERS=data["order_customers"],
            STORES=data["stores"],
            BASKETS=data["baskets"],
            AUTH=f"Token {tokens['orders']}",
            **common,
        )
    return scripts


# -- where the time goes: each endpoint in this process, without gunicorn or load ----------------


def _probe(data: dict, tokens: dict[str, str], cache_url: str, run_id: str, n: int) -> dict:
    """Each endpoint called `n` times through Django's WSGI handler in this process (the same
    middleware and URLconf as the gunicorn, no HTTP server, nothing else running from us):
    queries, CPU and time spent waiting on PostgreSQL per request. Inside one transaction rolled
    back at the end, so the orders placed here leave nothing behind (their status refreshes,
    queued on commit, are never sent)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections, connection, transaction
    from django.test.utils import override_settings

    overrides = {"ROOT_URLCONF": "bench.api_urls", "ALLOWED_HOSTS": ["127.0.0.1"]}
    if cache_url:
        overrides["CACHES"] = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": cache_url,
            }
        }
    rnd = random.Random(SEED)
    quote_path = urllib.parse.quote

    def environ(kind: str, i: int) -> dict:
        query, body, extra = "", b"", {}
        if kind in ("lookup", "bare"):
            path = "/api/v1/customers/" if kind == "lookup" else "/bench/lookup/"
            query = "phone=" + quote_path(rnd.choice(data["lookup"])[1], safe="")
            token = tokens["lookup"]
        elif kind == "quote":
            path, token = "/api/v1/checkout/quote/", tokens["quote"]
            customer, basket = rnd.choice(data["quote"])[0], rnd.choice(data["baskets"])
            body = f'{{"customer":{customer},"lines":{basket}}}'
        else:
            path, token = "/api/v1/orders/", tokens["orders"]
            number = f"{ORDER_PREFIX}{run_id}-p{i}"
            body = (
                f'{{"customer":{rnd.choice(data["order_customers"])},"number":"{number}",'
                f'"store":"{rnd.choice(data["stores"])}","status":"completed",'
                f'"lines":{rnd.choice(data["baskets"])}}}'
            )
            extra["HTTP_IDEMPOTENCY_KEY"] = number
        raw = body.encode() if isinstance(body, str) else body
        return {
            "REQUEST_METHOD": "POST" if raw else "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {token}",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(raw)),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(raw),
            **extra,
        }

    sql = {"n": 0, "seconds": 0.0}

    def timed(execute, statement, params, many, context):
        began = time.perf_counter()
        try:
            return execute(statement, params, many, context)
        finally:
            sql["n"] += 1
            sql["seconds"] += time.perf_counter() - began

    results = {}
    statuses: list[str] = []

    def start_response(status, headers, *args):
        statuses.append(status)

    # The handler closes the connection after each request when it is inside a transaction (as
    # this one is): not here.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with override_settings(**overrides), transaction.atomic():
            app = WSGIHandler()
            for kind in ("bare", "lookup", "quote", "orders"):
                for i in range(5):  # warm-up: imports, caches, plans
                    b"".join(app(environ(kind, -1 - i), start_response))
                requests = [environ(kind, i) for i in range(n)]
                statuses.clear()
                sql.update(n=0, seconds=0.0)
                with connection.execute_wrapper(timed):
                    cpu, wall = time.process_time(), time.perf_counter()
                    for env in requests:
                        b"".join(app(env, start_response))
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                failed = [s for s in statuses if not s.startswith("2")]
                if failed:
                    raise RuntimeError(f"{kind}: {len(failed)} answers not 2xx, e.g. {failed[0]}")
                results[kind] = {
                    "queries": sql["n"] / n,
                    "cpu_ms": cpu * 1000 / n,
                    "sql_ms": sql["seconds"] * 1000 / n,
                    "wall_ms": wall * 1000 / n,
                }
            transaction.set_rollback(True)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return results


def _code_state() -> str:
    """The commit, and the tracked files changed in the working tree (others may be editing)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "diff", "--name-only", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.split()
    except OSError:
        return "unknown (no git)"
    changed = [f for f in changed if f != "BENCHMARKS.md"]
    if not changed:
        return f"commit {head}, no uncommitted changes"
    return f"commit {head} with uncommitted changes in {', '.join(changed)}"


# -- the figures -----------------------------------------------------------------------------------


def _results(ctx, applies, data, runs, written, ledger, probe, cache_url, load_before, load_after):
    bare = min((runs["bare"], runs["bare_after"]), key=lambda r: r["p99"])
    lookup, quote, orders = runs["lookup"], runs["quote"], runs["orders"]
    ratio = lookup["p99"] / bare["p99"]
    size = (
        f"{ctx.customers:,} customers; lookups over {len(data['lookup']):,} of them (4 phone "
        f"notations), quotes for {len(data['quote']):,} (by id, 1 in 4 by phone), orders by "
        f"{len(data['order_customers']):,}; {len(data['baskets']):,} baskets of 1-4 lines of "
        f"{data['products']} SKUs ({data['prescription_only']} prescription-only)"
    )
    duration = DURATION_S[ctx.scale]

    def rps(name, r, target):
        return Result(
            name=f"{name}: requests/s",
            value=r["rps"],
            unit="req/s",
            baseline_name="bare lookup view (.values() + JsonResponse), requests/s",
            baseline_value=bare["rps"],
            data_size=size,
            target=f"≥ {target} req/s",
            passed=r["rps"] >= target if applies else None,
        )

    def p99(name, r, target, extra=""):
        passed = r["p99"] < target
        if extra:
            passed = passed and ratio <= TARGET_BARE_RATIO
        return Result(
            name=f"{name}: p99 latency",
            value=r["p99"],
            unit="ms",
            baseline_name="bare lookup view, p99",
            baseline_value=bare["p99"],
            data_size=size,
            target=f"< {target:g} ms{extra}",
            passed=passed if applies else None,
        )

    def line(name, r):
        codes = ", ".join(f"{c}: {n}" for c, n in sorted(r["codes"].items())) or "none"
        return (
            f"{name}: {r['requests']:,} requests in {r['seconds']:.1f} s, {r['rps']:,.0f} req/s; "
            f"latency p50 {r['p50']:.2f} ms, p90 {r['p90']:.2f}, p99 {r['p99']:.2f}, "
            f"p99.9 {r['p999']:.2f}, max {r['max']:.1f}; non-2xx {r['non2xx']} ({codes}), "
            f"socket errors {r['socket_errors']}; {cpu_line(r)}."
        )

    non2xx = sum(r["non2xx"] for r in runs.values())
    notes = [
        f"Setup: gunicorn `pharmacrm.wsgi`, {WORKERS} sync workers (each answer closes its "
        "connection: wrk reconnects per request), DEBUG off, access log off, one database "
        "connection per worker for the whole run (DB_CONN_MAX_AGE 3600; the product's 60 s "
        "would add one reconnection per worker and minute); settings `bench.api_settings` "
        "(the project's, plus the bench-only views' URLs); throttle counted in "
        + (f"Redis (CACHE_URL {cache_url})" if cache_url else "each worker's memory (no Redis)")
        + f", API clients' limit {RATE}; status refreshes of completed orders queued to an "
        "in-memory broker nobody consumes (production adds a Redis push per order). "
        f"wrk: {THREADS} threads, {CONNECTIONS} connections, {duration} s per run after a "
        f"{WARMUP_S[ctx.scale]} s warm-up, from {Path(shutil.which('wrk') or 'wrk').name} on "
        "loopback.",
        f"Code measured: {data['code']}.",
        "Load: wrk, gunicorn's workers and PostgreSQL share the machine's "
        f"{os.cpu_count()} cores, with whatever else runs (load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after); CPU per request below is "
        "process CPU time (/proc) divided by the requests wrk counted.",
        line(
            "DRF ping (no authentication, no database; PERFORMANCE.md: 4,300 req/s)", runs["ping"]
        ),
        line("bare lookup view, before", runs["bare"]),
        line("customer lookup (DRF)", lookup),
        line("bare lookup view, after", runs["bare_after"]),
        line("checkout quote", quote),
        line("order creation", orders),
        "Per request in-process (Django's WSGI handler in the benchmark's process, no HTTP "
        f"server, no load from us; {PROBE[ctx.scale]} requests each): "
        + "; ".join(
            f"{label} {probe[k]['queries']:.0f} queries, {probe[k]['cpu_ms']:.2f} ms CPU in "
            f"Python, {probe[k]['sql_ms']:.2f} ms waiting on PostgreSQL"
            for k, label in (
                ("bare", "bare lookup view"),
                ("lookup", "DRF lookup"),
                ("quote", "checkout quote"),
                ("orders", "order creation"),
            )
        )
        + " (orders: savepoints counted as queries; in gunicorn the outer ones are BEGIN/COMMIT).",
        f"DRF lookup p99 / bare view p99 = {ratio:.2f}× (target ≤ {TARGET_BARE_RATIO}×; the "
        "baseline is the bare run with the lower p99).",
        f"Orders written (warm-up included): {written['orders']:,} completed app orders for "
        f"{written['customers']:,} customers, {written['accruals']:,} accruals posting "
        f"{written['accrued']:,} bonuses (a basket of prescription-only lines earns none). "
        "check_bonus_ledger passed before the run "
        f"({data['ledger_before_s']:.1f} s) and after it (exit {ledger['returncode']}, "
        f"{ledger['seconds']:.1f} s). Then the orders, their lines and ledger rows, the "
        "accounts they opened and the API clients were deleted, the ordering customers' lots "
        "and accounts worked out again from their remaining ledger rows, and their ledger sums "
        "checked against those before the run.",
    ]
    return [
        rps("customer lookup by phone", lookup, TARGET_READ_RPS),
        p99(
            "customer lookup by phone",
            lookup,
            TARGET_READ_P99_MS,
            extra=f" and ≤ {TARGET_BARE_RATIO}× the bare view",
        ),
        rps("checkout quote", quote, TARGET_READ_RPS),
        p99("checkout quote", quote, TARGET_READ_P99_MS),
        rps("order creation (completed, bonuses accrued)", orders, TARGET_ORDER_RPS),
        p99("order creation (completed, bonuses accrued)", orders, TARGET_ORDER_P99_MS),
        Result(
            name="DRF ping, no authentication, no database (the machine's floor)",
            value=runs["ping"]["rps"],
            unit="req/s",
            baseline_name="PERFORMANCE.md's reference machine",
            baseline_value=4_300,
            data_size=size,
        ),
        Result(
            name="non-2xx answers to valid requests (all runs)",
            value=non2xx,
            unit="answers",
            data_size=size,
            target="0",
            passed=non2xx == 0,
        ),
        Result(
            name="manage.py check_bonus_ledger after the orders",
            value=ledger["returncode"],
            unit="(exit status)",
            data_size=size,
            target="0",
            passed=ledger["returncode"] == 0,
            notes=notes,
        ),
    ]
