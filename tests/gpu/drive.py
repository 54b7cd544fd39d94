#!/usr/bin/env python3
"""The measurements of the GPU check (tests/gpu/check.sh starts the swapper, then this).

1. The llama.cpp worker alone (llama.cpp in one process, JSON lines, no swapper): load time,
   time to first token, generation speed. This is the reference the swapper is compared with.
2. The same model through the swapper's OpenAI API (streamed): cold load, time to first token,
   generation speed, and their ratio to the reference.
3. Vision: the model with its projector answering about a picture (image encoding included).
4. Image generation: stable-diffusion.cpp at 512x512, cold (load and generate) and warm.
5. Swaps: with a budget that holds one model, chat -> vision -> image -> chat, each a swap.
6. Memory: the footprint the swapper measured for each model next to what nvidia-smi shows for
   the worker, and how long the GPU takes to give the memory back after an unload.

Usage: drive.py OUT_DIR [swaps]. Standard library only (the GPU machine has no registry).
Writes report-PHASE.json and appends to report.md in OUT_DIR; prints each figure."""
import base64
import json
import os
import statistics
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib

URL = os.environ["SWAPPER_URL"]
TOKEN = os.environ["SWAPPER_TOKEN"]
# Which workers this run has: "llama", "sd" or both (each travels in its own pack).
PARTS = os.environ.get("PARTS", "llama sd").split()
WORKER = os.environ.get("LLAMA_WORKER", "")
LLM = os.environ.get("LLM_FILE", "")
OUT = sys.argv[1]
TOKENS = int(os.environ.get("GEN_TOKENS", "256"))
RUNS = 3
IMAGE_SIZE = int(os.environ.get("IMAGE_SIZE", "512"))
IMAGE_STEPS = int(os.environ.get("IMAGE_STEPS", "20"))
PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
report = {"figures": {}, "notes": []}


def figure(name, value, unit=""):
    report["figures"][name] = {"value": value, "unit": unit}
    print(f"  {name}: {value} {unit}", flush=True)


def smi(query):
    """Rows of nvidia-smi's CSV answer, or [] where there is no nvidia-smi (a CPU dry run)."""
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-{query}", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [[c.strip() for c in line.split(",")] for line in out.strip().splitlines() if line.strip()]


def gpu_used_mib():
    rows = smi("gpu=memory.used")
    return sum(int(r[0]) for r in rows) if rows else None


def process_mib(pid):
    for row in smi("compute-apps=pid,used_memory"):
        if row[0] == str(pid):
            return int(row[1])
    return None


def request(method, path, body=None, timeout=600):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def status(model):
    _, s = request("GET", "/v1/swapper/status")
    return next(m for m in s["models"] if m["id"] == model)


def stream_chat(model, messages, max_tokens=TOKENS):
    """(seconds to the first token, tokens per second after it, tokens, total seconds)"""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "ignore_eos": True}
    req = urllib.request.Request(URL + "/v1/chat/completions", data=json.dumps(body).encode(), method="POST")
    req.add_header("Authorization", f"Bearer {TOKEN}")
    req.add_header("Content-Type", "application/json")
    started = time.perf_counter()
    first = last = None
    tokens = 0
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            event = json.loads(line[5:])
            if event.get("error"):
                raise RuntimeError(f"{model}: {event['error']}")
            delta = event["choices"][0].get("delta", {}).get("content")
            if delta:
                now = time.perf_counter()
                first = first or now
                last = now
                tokens += 1
    if not first:
        raise RuntimeError(f"{model}: no tokens")
    rate = (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0
    return first - started, rate, tokens, time.perf_counter() - started


def direct_worker():
    """The reference: the worker binary driven directly, as llama.cpp in one process."""
    started = time.perf_counter()
    worker = subprocess.Popen(
        [WORKER, "--model", LLM, "--mode", "chat", "--ctx", "4096", "--gpu-layers", "999"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1,
    )
    ready = json.loads(worker.stdout.readline())
    if ready.get("event") != "ready":
        raise RuntimeError(f"worker did not load: {ready}")
    figure("reference: worker load (page cache warm)", round(time.perf_counter() - started, 2), "s")
    figure("reference: worker VRAM (nvidia-smi)", process_mib(worker.pid), "MiB")
    ttfts, rates = [], []
    for run in range(RUNS):
        request_line = {"id": run + 1, "op": "chat", "messages": [{"role": "user", "content": PROMPT}],
                        "max_tokens": TOKENS, "temperature": 0, "ignore_eos": True}
        sent = time.perf_counter()
        worker.stdin.write(json.dumps(request_line) + "\n")
        worker.stdin.flush()
        first = last = None
        tokens = 0
        while True:
            event = json.loads(worker.stdout.readline())
            if event.get("event") == "token":
                now = time.perf_counter()
                first = first or now
                last = now
                tokens += 1
            elif event.get("event") in ("done", "error"):
                if event["event"] == "error":
                    raise RuntimeError(f"worker: {event}")
                break
        ttfts.append(first - sent)
        rates.append((tokens - 1) / (last - first))
    worker.stdin.close()
    worker.wait(timeout=60)
    figure("reference: time to first token (median)", round(statistics.median(ttfts) * 1000, 1), "ms")
    figure("reference: generation (median)", round(statistics.median(rates), 1), "tokens/s")
    return statistics.median(rates)


def png(width, height):
    """An RGB gradient PNG, made here so that nothing has to travel."""
    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 128))
                    for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def memory_released_after_unload(model):
    before = gpu_used_mib()
    footprint_mib = status(model)["footprint_bytes"] // (1024 * 1024)
    started = time.perf_counter()
    code, body = request("POST", f"/v1/swapper/models/{model}/unload")
    assert code == 200, body
    answered = time.perf_counter() - started
    if before is None:
        return answered, None
    # Released once the used memory fell by most of the model's footprint.
    target = before - 0.9 * footprint_mib
    while time.perf_counter() - started < 30:
        used = gpu_used_mib()
        if used is not None and used <= target:
            return answered, time.perf_counter() - started
        time.sleep(0.05)
    return answered, None


def main():
    if "llama" in PARTS:
        chat_and_vision()
    if "sd" in PARTS:
        image_generation()
    _, st = request("GET", "/v1/swapper/status")
    report["status"] = st
    report["nvidia_smi"] = smi("gpu=name,driver_version,memory.total,memory.used")
    # The swap phase runs under a budget that holds the largest model but never two.
    sizes = sorted(m["footprint_bytes"] // 2**20 for m in st["models"] if m["measured"])
    with open(os.path.join(OUT, "budget_mb"), "w") as f:
        f.write(str(sizes[-1] + sizes[0] // 2))


def chat_and_vision():
    print("== reference: the worker alone", flush=True)
    reference = direct_worker()

    print("== chat through the swapper", flush=True)
    started = time.perf_counter()
    code, body = request("POST", "/v1/swapper/models/llm/load")
    assert code == 200, body
    figure("swapper: chat model cold load (page cache warm)", round(time.perf_counter() - started, 2), "s")
    s = status("llm")
    figure("swapper: chat model footprint measured", round(s["footprint_bytes"] / 2**20), "MiB")
    figure("nvidia-smi: chat worker", process_mib(s["pid"]), "MiB")
    results = [stream_chat("llm", [{"role": "user", "content": PROMPT}]) for _ in range(RUNS)]
    ttft = statistics.median(r[0] for r in results)
    rate = statistics.median(r[1] for r in results)
    figure("swapper: time to first token (median)", round(ttft * 1000, 1), "ms")
    figure("swapper: generation (median)", round(rate, 1), "tokens/s")
    figure("swapper / reference generation", round(rate / reference, 3), "x")
    answered, released = memory_released_after_unload("llm")
    figure("unload: answered after", round(answered * 1000), "ms")
    figure("unload: GPU memory given back after", None if released is None else round(released * 1000), "ms")

    print("== vision", flush=True)
    picture = base64.b64encode(png(336, 336)).decode()
    messages = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{picture}"}},
        {"type": "text", "text": "Describe this picture."}]}]
    cold = stream_chat("vision", messages, 64)
    figure("vision: cold (load, encode 336x336, first token)", round(cold[0], 2), "s")
    warm = [stream_chat("vision", messages, 64) for _ in range(RUNS)]
    figure("vision: warm time to first token (image encoded)", round(statistics.median(w[0] for w in warm) * 1000, 1), "ms")
    figure("vision: generation after the picture", round(statistics.median(w[1] for w in warm), 1), "tokens/s")
    s = status("vision")
    figure("vision: footprint measured", round(s["footprint_bytes"] / 2**20), "MiB")


def image_generation():
    print("== image generation", flush=True)
    times = []
    for run in range(RUNS + 1):
        started = time.perf_counter()
        code, body = request("POST", "/v1/images/generations", {
            "model": "sd", "prompt": "a lighthouse on a cliff at dusk", "size": f"{IMAGE_SIZE}x{IMAGE_SIZE}",
            "steps": IMAGE_STEPS, "seed": run, "response_format": "b64_json"})
        assert code == 200, body
        assert base64.b64decode(body["data"][0]["b64_json"])[:8] == b"\x89PNG\r\n\x1a\n"
        times.append(time.perf_counter() - started)
    figure(f"image: cold {IMAGE_SIZE}x{IMAGE_SIZE}, {IMAGE_STEPS} steps (load and generate)", round(times[0], 2), "s")
    figure(f"image: warm {IMAGE_SIZE}x{IMAGE_SIZE}, {IMAGE_STEPS} steps (median)", round(statistics.median(times[1:]), 2), "s")
    figure("image: steps per second (warm)", round(IMAGE_STEPS / statistics.median(times[1:]), 2), "it/s")
    s = status("sd")
    figure("image: footprint measured", round(s["footprint_bytes"] / 2**20), "MiB")
    figure("nvidia-smi: image worker", process_mib(s["pid"]), "MiB")


def swaps():
    """Under a one-model budget every request below first evicts the model before it."""
    hello = [{"role": "user", "content": "Say hello."}]
    picture = base64.b64encode(png(336, 336)).decode()
    look = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{picture}"}},
        {"type": "text", "text": "What is in this picture?"}]}]
    chat = ("llm", lambda: stream_chat("llm", hello, 8)[0])
    vision = ("vision", lambda: stream_chat("vision", look, 8)[0])
    picture = ("sd", lambda: image(8))
    if PARTS == ["sd"]:
        print("one model only: no swaps", flush=True)
        return
    order = [chat, vision, picture, chat, picture] if "sd" in PARTS else [chat, vision, chat, vision]
    order[0][1]()
    for step, (model, go) in enumerate(order[1:]):
        took = go()
        loaded = [m["id"] for m in request("GET", "/v1/swapper/status")[1]["models"] if m["state"] == "loaded"]
        assert loaded == [model], f"after the swap to {model} the loaded models are {loaded}"
        figure(f"swap {step + 1}: to {model} (evict, load, first result)", round(took, 2), "s")
        figure(f"swap {step + 1}: {model} load alone", status(model)["last_load_ms"], "ms")


def image(steps):
    started = time.perf_counter()
    code, body = request("POST", "/v1/images/generations", {
        "model": "sd", "prompt": "a lighthouse", "size": f"{min(IMAGE_SIZE, 256)}x{min(IMAGE_SIZE, 256)}",
        "steps": min(IMAGE_STEPS, steps), "seed": 1})
    assert code == 200, body
    return time.perf_counter() - started


try:
    swaps() if len(sys.argv) > 2 and sys.argv[2] == "swaps" else main()
finally:
    os.makedirs(OUT, exist_ok=True)
    phase = "swaps" if len(sys.argv) > 2 and sys.argv[2] == "swaps" else "main"
    with open(os.path.join(OUT, f"report-{phase}.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(OUT, "report.md"), "a") as f:
        if phase == "main":
            f.write("| figure | value |\n|---|---|\n")
        for name, v in report["figures"].items():
            f.write(f"| {name} | {v['value']} {v['unit']} |\n")
