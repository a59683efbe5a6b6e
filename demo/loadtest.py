"""Load benchmark of the app: N concurrent streaming ``/generate`` clients over HTTP.

    python demo/loadtest.py                      # starts demo/app.py on a free loopback port
    python demo/loadtest.py --clients 1 4 --memory-runs 0 --speed Fast
    python demo/loadtest.py --url http://127.0.0.1:7860/   # an app already running here

For every N it submits N ``/generate`` runs at once (all inputs at their API defaults, the
speed at ``--speed``, seed k for client k) through Gradio's HTTP API (``POST
/gradio_api/call/generate``, then the server-sent events of that call), reads every frame
update without downloading the images, and reports: completions, p50/p95/max time from
submit to the last update, p95 time to the first frame, frames per client per second, the
runs per second the server completed (throughput), the server's CPU (cores busy over the
phase, from ``/proc``) and its RSS. Then ``--memory-runs`` runs (in waves of
``--memory-wave``) to check that RSS does not grow.

Everything stays on loopback: ``--url`` must name 127.0.0.1 or localhost. Every phase is
bounded (``--timeout`` per run). The server's CPU and RSS are read from ``/proc/<pid>`` (Linux),
so they are reported only for a server this script started or ``--pid``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# ----------------------------------------------------------------------------- the server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env: dict[str, str] | None = None, timeout: float = 180,
                 log=subprocess.DEVNULL) -> subprocess.Popen:
    """``python demo/app.py`` on ``127.0.0.1:port``, its stderr to ``log``; returns once it
    answers HTTP."""
    proc = subprocess.Popen([sys.executable, str(REPO / "demo" / "app.py")],
                            env={**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1",
                                 "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
                                 **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=log, text=True)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/gradio_api/info", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the app did not answer within {timeout:.0f} s")


@dataclass
class Proc:
    """CPU seconds and memory of a process, from ``/proc`` (None where unreadable)."""
    pid: int | None

    def cpu_s(self) -> float | None:
        if self.pid is None:
            return None
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime

    def mem_mb(self, key: str = "VmRSS") -> float | None:
        if self.pid is None:
            return None
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None


# ----------------------------------------------------------------------------- the clients

@dataclass
class Result:
    ok: bool = False
    frames: int = 0
    submit_s: float = 0.0          # time to get the event id
    first_s: float | None = None   # time to the first update
    total_s: float = 0.0           # time to the end of the stream
    error: str = ""


async def one_run(client: httpx.AsyncClient, base: str, data: list, timeout: float,
                  endpoint: str = "generate", session: str | None = None) -> Result:
    """One streaming call of ``endpoint`` in the Gradio session ``session`` (a new one when
    None): submit, then read its server-sent events."""
    r, t0 = Result(), time.perf_counter()
    body = {"data": data, **({"session_hash": session} if session else {})}
    try:
        async with asyncio.timeout(timeout):
            resp = await client.post(f"{base}gradio_api/call/{endpoint}", json=body)
            resp.raise_for_status()
            event_id = resp.json()["event_id"]
            r.submit_s = time.perf_counter() - t0
            event = None
            async with client.stream("GET", f"{base}gradio_api/call/{endpoint}/{event_id}") as s:
                async for line in s.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        if event == "generating":
                            r.frames += 1
                            if r.first_s is None:
                                r.first_s = time.perf_counter() - t0
                        elif event == "complete":
                            r.ok = True
                            r.frames += 1
                        elif event == "error":
                            r.error = line[5:].strip()[:200]
    except (httpx.HTTPError, TimeoutError, KeyError, ValueError) as e:
        r.error = f"{type(e).__name__}: {e}"[:200]
    r.total_s = time.perf_counter() - t0
    return r


async def wave_of(base: str, data_for: list[list], timeout: float, endpoint: str = "generate"
                  ) -> tuple[list[Result], float]:
    """All calls at once, call k in session ``loadtest-k`` (one user's session, reused by
    later waves, as a classroom's browsers would); their results and the wave's wall time."""
    limits = httpx.Limits(max_connections=2 * len(data_for) + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=30), limits=limits) as c:
        t = time.perf_counter()
        results = await asyncio.gather(*(one_run(c, base, d, timeout, endpoint, f"loadtest-{k}")
                                         for k, d in enumerate(data_for)))
        return list(results), time.perf_counter() - t


def defaults(base: str, endpoint: str = "generate") -> tuple[list, list[str]]:
    """An endpoint's inputs at their API defaults, in order (as gradio_client fills them),
    and their names."""
    info = httpx.get(f"{base}gradio_api/info", timeout=30).json()
    params = info["named_endpoints"][f"/{endpoint}"]["parameters"]
    return [p.get("parameter_default") for p in params], [p["parameter_name"] for p in params]


def use_every_tab(base: str, timeout: float) -> list[str]:
    """Every tab once per dataset: Generate with every architecture, Compare, and the
    Explain views (receptive field, masks, likelihood preset, GIF export). The calls that
    did not complete."""
    info = httpx.get(f"{base}gradio_api/info", timeout=30).json()["named_endpoints"]
    gen, gen_names = defaults(base)
    cmp, _ = defaults(base, "compare")
    calls = []
    for ds, key in (("MNIST digits", "mnist"), ("Fashion-MNIST", "fashion"), ("Emoji", "emoji")):
        archs = info["/generate"]["parameters"][gen_names.index("architecture")]["type"].get("enum")
        for arch in archs or ["PixelCNN", "Row LSTM", "Diagonal BiLSTM"]:
            calls.append(("generate", [*gen[:2], ds, arch, 1.0, 0, "Max", *gen[7:]]))
        calls += [("compare", [*cmp[:2], ds, 1.0, 0, "Max", *cmp[6:]]),
                  ("receptive_field", [key, 5, 5, "R"]), ("masks", [key, "pixelcnn"]),
                  ("preset", [key]), ("gf_run", [key, "pixelcnn", 20, 0, 1.0, "blank", None])]
    failed = []
    for endpoint, data in calls:
        r = asyncio.run(wave_of(base, [data], timeout, endpoint))[0][0]
        if not r.ok and "not offered" not in r.error:          # Multi-Scale for Fashion
            failed.append(f"/{endpoint} {data[2:4] if endpoint == 'generate' else data[:1]}: "
                          f"{r.error or 'no result'}")
    return failed


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``."""
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q * len(v) + 0.5) - 1))]


# ----------------------------------------------------------------------------- frame costs

def frame_costs(repeat: int = 50) -> str:
    """A Markdown table: milliseconds to render and PNG-encode one frame and one softmax
    chart (what every frame update of /generate costs besides sampling), per dataset shape."""
    import io

    import numpy as np

    sys.path.insert(0, str(REPO))
    from demo import imaging as im

    def ms(fn) -> float:
        fn()
        t = time.perf_counter()
        for _ in range(repeat):
            fn()
        return (time.perf_counter() - t) / repeat * 1000

    def png(img, level: int) -> bytes:
        buf = io.BytesIO()
        img.save(buf, "png", compress_level=level)
        return buf.getvalue()

    from PIL import Image
    rng = np.random.default_rng(0)
    rows = ["| images | render frame | render chart | PNG frame, level 6 / 1 | PNG chart, level 6 / 1 |",
            "|---|---|---|---|---|"]
    for name, C, L, H in (("MNIST 28x28, 2 levels", 1, 2, 28), ("emoji 32x32 RGB, 256 levels", 3, 256, 32)):
        x = rng.integers(0, L, (C, H, H))
        pending = np.zeros((H, H), bool)
        pending[H // 2:] = True
        dists = [rng.dirichlet(np.ones(L)) for _ in range(C)]
        values = [int(d.argmax()) for d in dists]
        frame = Image.fromarray(im.render_frame(x, L, pending, (H // 2, 3)))
        chart = im.bar_chart(dists, values, L, 0, "pixel (14, 3): softmax")
        cells = [f"{ms(lambda: im.render_frame(x, L, pending, (H // 2, 3))):.2f} ms",
                 f"{ms(lambda: im.bar_chart(dists, values, L, 0, 'pixel (14, 3): softmax')):.2f} ms"]
        for img in (frame, chart):
            a, b = ms(lambda: png(img, 6)), ms(lambda: png(img, 1))
            cells.append(f"{a:.2f} / {b:.2f} ms ({len(png(img, 6)) // 1024 + 1} / "
                         f"{len(png(img, 1)) // 1024 + 1} KB)")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- the benchmark

def run_phase(base: str, data: list, names: list[str], n: int, speed: str, timeout: float,
              proc: Proc) -> dict:
    """``n`` runs at once (seeds 0..n-1); the row of the table."""
    runs = []
    for k in range(n):
        d = list(data)
        d[names.index("speed")] = speed
        d[names.index("seed")] = k
        runs.append(d)
    cpu0 = proc.cpu_s()
    results, wall = asyncio.run(wave_of(base, runs, timeout))
    cpu1 = proc.cpu_s()
    done = [r for r in results if r.ok]
    times = [r.total_s for r in done] or [float("nan")]
    firsts = [r.first_s for r in done if r.first_s is not None] or [float("nan")]
    errors = sorted({r.error for r in results if r.error})
    return dict(n=n, done=len(done), p50=statistics.median(times), p95=pct(times, 0.95),
                max=max(times), first_p95=pct(firsts, 0.95),
                fps=statistics.mean(r.frames / r.total_s for r in done) if done else 0.0,
                throughput=len(done) / wall, wall=wall,
                cpu=(cpu1 - cpu0) / wall if cpu0 is not None and cpu1 is not None else None,
                rss=proc.mem_mb(), errors=errors)


def table(rows: list[dict]) -> str:
    base = rows[0]["throughput"] if rows and rows[0]["throughput"] else None
    out = ["| concurrent runs | completed | p50 | p95 | max | p95 to first frame | frames/client/s "
           "| runs/s | throughput vs N=1 | server CPU (cores) | server RSS |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rel = f"{r['throughput'] / base:.1f}x" if base else "-"
        cpu = f"{r['cpu']:.2f}" if r["cpu"] is not None else "-"
        rss = f"{r['rss']:.0f} MB" if r["rss"] is not None else "-"
        out.append(f"| {r['n']} | {r['done']}/{r['n']} | {r['p50']:.1f} s | {r['p95']:.1f} s | "
                   f"{r['max']:.1f} s | {r['first_p95']:.1f} s | {r['fps']:.1f} | "
                   f"{r['throughput']:.2f} | {rel} | {cpu} | {rss} |")
    return "\n".join(out)


def memory_check(base: str, data: list, names: list[str], runs: int, wave_size: int,
                 speed: str, timeout: float, proc: Proc) -> list[tuple[int, float | None, int]]:
    """``runs`` runs in waves of ``wave_size``: ``(runs so far, RSS MB, failures)`` after each."""
    out, done = [], 0
    while done < runs:
        k = min(wave_size, runs - done)
        row = run_phase(base, data, names, k, speed, timeout, proc)
        done += k
        out.append((done, proc.mem_mb(), k - row["done"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 32])
    ap.add_argument("--speed", default="Max", help="animation speed of every run (default Max)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per run, at most")
    ap.add_argument("--memory-runs", type=int, default=100)
    ap.add_argument("--memory-wave", type=int, default=10)
    ap.add_argument("--no-tabs", action="store_true",
                    help="skip using every tab (then RSS) at the end")
    ap.add_argument("--frame-costs", action="store_true",
                    help="only measure what rendering and encoding a frame costs, then exit")
    ap.add_argument("--url", help="an app already running on loopback (default: start one)")
    ap.add_argument("--pid", type=int, help="with --url: the server's pid, for CPU and RSS")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--server-log", help="the started app's stderr goes here (with "
                    "PIXELNET_LOG_BATCHES=1 in the environment: one line per batch)")
    args = ap.parse_args()
    if args.frame_costs:
        print(frame_costs())
        return
    if max(args.clients) > 64 or args.memory_wave > 64:
        ap.error("at most 64 concurrent clients (the app's queue holds 64)")

    server = None
    if args.url:
        host = urlparse(args.url).hostname
        if host not in LOOPBACK:
            ap.error(f"--url must be on loopback ({', '.join(LOOPBACK)}), got {host!r}")
        base, pid = args.url.rstrip("/") + "/", args.pid
    else:
        port = free_port()
        t = time.perf_counter()
        log = open(args.server_log, "w") if args.server_log else subprocess.DEVNULL
        server = start_server(port, log=log)
        print(f"app started in {time.perf_counter() - t:.1f} s (pid {server.pid})", flush=True)
        base, pid = f"http://127.0.0.1:{port}/", server.pid
    proc = Proc(pid)
    try:
        data, names = defaults(base)
        print("warm-up run ...", flush=True)
        warm = run_phase(base, data, names, 1, args.speed, args.timeout, proc)
        if not warm["done"]:
            raise SystemExit(f"the warm-up run failed: {warm['errors']}")
        rows = []
        for n in args.clients:
            rows.append(run_phase(base, data, names, n, args.speed, args.timeout, proc))
            r = rows[-1]
            print(f"N={n}: {r['done']}/{n} done, p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s, "
                  f"max {r['max']:.2f} s, {r['fps']:.1f} frames/client/s, "
                  f"{r['throughput']:.2f} runs/s" + (f", errors {r['errors']}" if r["errors"] else ""),
                  flush=True)
        print()
        print(table(rows))
        mem = []
        if args.memory_runs:
            mem = memory_check(base, data, names, args.memory_runs, args.memory_wave, args.speed,
                               args.timeout, proc)
            fails = sum(f for _, _, f in mem)
            print(f"\nRSS over {args.memory_runs} more runs (waves of {args.memory_wave}): " +
                  ", ".join(f"{k}: {m:.0f} MB" if m is not None else f"{k}: -" for k, m, _ in mem)
                  + f"; failed runs: {fails}; peak RSS {proc.mem_mb('VmHWM') or 0:.0f} MB")
        tabs = None
        if not args.no_tabs:
            failed = use_every_tab(base, args.timeout)
            tabs = dict(rss=proc.mem_mb(), peak=proc.mem_mb("VmHWM"), failed=failed)
            print(f"\nafter every tab: RSS {tabs['rss'] or 0:.0f} MB (peak {tabs['peak'] or 0:.0f} MB)"
                  + (f"; failed: {failed}" if failed else ""))
        if args.json:
            Path(args.json).write_text(json.dumps(dict(rows=rows, memory=mem, tabs=tabs,
                                                       speed=args.speed, load=os.getloadavg()),
                                                  indent=1))
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
