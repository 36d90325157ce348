"""The gateway's added latency: N signed, safe-mode WeChat text messages
through POST /wechat against the same messages sent straight to Rasa's REST
channel (POST /webhooks/rest/webhook), one at a time, interleaved.

    python -m bench.latency_gateway --start-stack -n 50     # starts its own stack on spare ports
    python -m bench.latency_gateway -n 50                   # against a running `make run`
        (GATEWAY_URL, RASA_URL; WECHAT_TOKEN, WECHAT_APPID, WECHAT_ENCODING_AES_KEY as the gateway has them)
    --show-exchange   also print one safe-mode request and its decrypted reply

Every message comes from a new sender on both paths, so both pay the same
session start in Rasa; the order (gateway first or Rasa first) alternates.
Gateway time = HTTP round trip of the encrypted POST (encryption and
decryption by the client are outside the timer).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.wechat import WeChatCrypto, make_msg_signature, make_signature, parse_message  # noqa: E402
from core.settings import Settings  # noqa: E402

ACCOUNT = "gh_bench0000001"
TEXTS = ["环评报告表要交什么材料", "你好", "环评登记表怎么办理", "报告书要多久能批下来"]
# Test credentials for --start-stack (never a real account's).
BENCH_TOKEN, BENCH_APPID = "benchtoken", "wxbench000000000"
BENCH_AES_KEY = "YmVuY2gtbGF0ZW5jeS1nYXRld2F5LWFlcy1rZXktMzI"


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def wechat_request(crypto: WeChatCrypto, token: str, openid: str, text: str) -> tuple[dict, bytes, str]:
    ts, nonce = str(int(time.time())), str(uuid.uuid4().int % 10**9)
    xml = (f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
           f"<CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{text}]]></Content>"
           f"<MsgId>{uuid.uuid4().int % 10**19}</MsgId></xml>")
    encrypt = crypto.encrypt(xml)
    query = {"signature": make_signature(token, ts, nonce), "timestamp": ts, "nonce": nonce, "openid": openid,
             "encrypt_type": "aes", "msg_signature": make_msg_signature(token, ts, nonce, encrypt)}
    body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    return query, body.encode(), xml


def decrypt_reply(crypto: WeChatCrypto, body: str) -> str | None:
    if body == "success":
        return None
    import defusedxml.ElementTree as ET

    env = {c.tag: c.text or "" for c in ET.fromstring(body)}
    return crypto.decrypt_message(body, env["MsgSignature"], env["TimeStamp"], env["Nonce"])


async def via_gateway(session, gateway: str, crypto, token: str, text: str) -> tuple[float, bool]:
    query, body, _ = wechat_request(crypto, token, "oBench" + uuid.uuid4().hex[:22], text)
    t0 = time.perf_counter()
    async with session.post(f"{gateway}/wechat", params=query, data=body) as r:
        reply = await r.text()
        status = r.status
    dt = time.perf_counter() - t0
    if status != 200:
        raise RuntimeError(f"gateway answered HTTP {status}: {reply[:200]}")
    xml = decrypt_reply(crypto, reply)
    return dt, xml is not None and bool(parse_message(xml).content)


async def via_rasa(session, rasa: str, text: str) -> tuple[float, bool]:
    payload = {"sender": "bench-" + uuid.uuid4().hex[:16], "message": text}
    t0 = time.perf_counter()
    async with session.post(f"{rasa}/webhooks/rest/webhook", json=payload) as r:
        data = await r.json(content_type=None)
    dt = time.perf_counter() - t0
    return dt, any(m.get("text") for m in data)


async def show_exchange(gateway: str, crypto: WeChatCrypto, token: str) -> None:
    query, body, plain = wechat_request(crypto, token, "oBench" + uuid.uuid4().hex[:22], TEXTS[0])
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{gateway}/wechat", params=query, data=body) as r:
            reply = await r.text()
    print("== safe-mode exchange ==")
    print("POST /wechat?" + "&".join(f"{k}={v}" for k, v in query.items()))
    print(body.decode())
    print("-- the request decrypted --")
    print(plain)
    print("-- reply as sent by the gateway --")
    print(reply)
    print("-- reply decrypted (msg_signature checked) --")
    print(decrypt_reply(crypto, reply))
    print()


async def measure(gateway: str, rasa: str, crypto, token: str, n: int, warmup: int) -> dict:
    gw, ra, gw_ok, ra_ok = [], [], 0, 0
    conn = dict(limit=4, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(**conn)) as s1, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(**conn)) as s2:
        for i in range(warmup + n):
            text = TEXTS[i % len(TEXTS)]
            pair = [via_gateway(s1, gateway, crypto, token, text), via_rasa(s2, rasa, text)]
            if i % 2:
                pair.reverse()
            first = await pair[0]
            second = await pair[1]
            (g, r) = (first, second) if i % 2 == 0 else (second, first)
            if i >= warmup:
                gw.append(g[0])
                ra.append(r[0])
                gw_ok += g[1]
                ra_ok += r[1]
    med_g, med_r = statistics.median(gw), statistics.median(ra)
    return {
        "n": n,
        "gateway_ms": {"median": med_g * 1000, "p95": pct(gw, 95) * 1000, "mean": statistics.mean(gw) * 1000},
        "rasa_ms": {"median": med_r * 1000, "p95": pct(ra, 95) * 1000, "mean": statistics.mean(ra) * 1000},
        "ratio_median": med_g / med_r,
        "ratio_p95": pct(gw, 95) / pct(ra, 95),
        "added_ms_median": (med_g - med_r) * 1000,
        "gateway_answered_passively": gw_ok,
        "rasa_answered": ra_ok,
    }


def start_stack():
    from scripts import redis_server
    from scripts.stack import Stack

    redis_url, own = redis_server.resolve(ROOT / "var" / "redis")
    stack = Stack(gateway_port=redis_server.free_port(), rasa_port=redis_server.free_port(),
                  action_port=redis_server.free_port(), redis_url=redis_url,
                  key_prefix=f"bench{uuid.uuid4().hex[:6]}:", log_dir=ROOT / "var" / "log" / "bench",
                  extra_env={"WECHAT_TOKEN": BENCH_TOKEN, "WECHAT_APPID": BENCH_APPID,
                             "WECHAT_APPSECRET": "bench-secret", "WECHAT_ENCODING_AES_KEY": BENCH_AES_KEY,
                             # late answers would go to the customer-service API: nowhere here
                             "WECHAT_API_BASE": "http://127.0.0.1:9",
                             "RATE_LIMIT_PER_MIN": "0"})
    print("starting the stack (action server, Rasa, gateway) ...", file=sys.stderr)
    stack.start(log=lambda m: print(m, file=sys.stderr))
    return stack, own


def delete_prefix(redis_url: str, prefix: str) -> None:
    import redis

    from scripts.stack import rasa_env

    base = redis.Redis.from_url(redis_url)
    db0 = base.connection_pool.connection_kwargs.get("db", 0)
    base.close()
    for off in (0, 1, 2):
        r = redis.Redis.from_url(redis_url, db=db0 + off)
        for pattern in (prefix + "*", rasa_env(redis_url, prefix, "")["RASA_KEY_PREFIX"] + "*"):
            keys = list(r.scan_iter(match=pattern, count=1000))
            for i in range(0, len(keys), 500):
                r.delete(*keys[i:i + 500])
        r.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=50, help="measured messages per path (default 50)")
    ap.add_argument("--warmup", type=int, default=4)
    ap.add_argument("--gateway", default=os.environ.get("GATEWAY_URL", "http://127.0.0.1:8080"))
    ap.add_argument("--rasa", default=os.environ.get("RASA_URL", "http://127.0.0.1:5005"))
    ap.add_argument("--start-stack", action="store_true", help="start a stack on spare ports for the run")
    ap.add_argument("--show-exchange", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = ap.parse_args()

    stack = own = None
    if args.start_stack:
        stack, own = start_stack()
        gateway, rasa = stack.gateway_url, stack.rasa_url
        token, appid, aes = BENCH_TOKEN, BENCH_APPID, BENCH_AES_KEY
    else:
        s = Settings.from_env()
        gateway, rasa = args.gateway.rstrip("/"), args.rasa.rstrip("/")
        token, appid, aes = s.wechat_token, s.wechat_appid, s.wechat_encoding_aes_key
        if not (token and appid and aes):
            print("set WECHAT_TOKEN, WECHAT_APPID and WECHAT_ENCODING_AES_KEY as the gateway has them, "
                  "or use --start-stack", file=sys.stderr)
            return 2
    try:
        crypto = WeChatCrypto(token, aes, appid)
        if args.show_exchange:
            asyncio.run(show_exchange(gateway, crypto, token))
        res = asyncio.run(measure(gateway, rasa, crypto, token, args.n, args.warmup))
    finally:
        if stack is not None:
            stack.stop()
            delete_prefix(stack.redis_url, stack.key_prefix)
            if own:
                own.stop()
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    g, r = res["gateway_ms"], res["rasa_ms"]
    print(f"{res['n']} text messages per path, one at a time, new sender each")
    print(f"{'':26}{'median':>10}{'p95':>10}{'mean':>10}  (ms)")
    print(f"{'WeChat gateway (safe mode)':26}{g['median']:10.1f}{g['p95']:10.1f}{g['mean']:10.1f}")
    print(f"{'Rasa REST channel':26}{r['median']:10.1f}{r['p95']:10.1f}{r['mean']:10.1f}")
    print(f"ratio gateway/Rasa: median {res['ratio_median']:.2f}, p95 {res['ratio_p95']:.2f}; "
          f"added median {res['added_ms_median']:.1f} ms")
    print(f"answered passively: {res['gateway_answered_passively']}/{res['n']} via gateway, "
          f"{res['rasa_answered']}/{res['n']} replies from Rasa")
    return 0


if __name__ == "__main__":
    sys.exit(main())
