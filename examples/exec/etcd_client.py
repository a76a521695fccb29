#!/usr/bin/env python3
"""An etcd client for faultline's exec target (docs/exec.md), standard
library only: it talks to etcd's v3 JSON gateway with urllib.

faultline starts one of these per worker, writes one operation per line on
stdin ({"f":"write","key":3,"value":4}) and reads one completion per line on
stdout ({"type":"ok","f":"write","value":4}). Workloads: register (read,
write, cas) and set (add, read).

    python3 etcd_client.py                  # linearizable reads (etcd's default)
    python3 etcd_client.py --serializable   # local, possibly stale reads

Classification, as faultline's built-in etcd client does it: a refused
connection never reached etcd, so the op failed; a timeout or an error after
the request was sent leaves a write's outcome unknown (info), while a read,
which changes nothing, failed.
"""

import base64
import json
import os
import random
import sys
import time
import urllib.error
import urllib.request

BASE = "http://%s:2379" % os.environ["FAULTLINE_NODE_ADDR"]
# Answer before faultline gives up on the operation.
TIMEOUT = float(os.environ.get("FAULTLINE_OP_TIMEOUT", "5")) * 0.9
WORKLOAD = os.environ.get("FAULTLINE_WORKLOAD", "register")
SERIALIZABLE = "--serializable" in sys.argv[1:]
PREFIX = "faultline-exec/"


class Fail(Exception):
    """The operation certainly did not happen."""


class NotSent(Exception):
    """The request never reached etcd."""


class Unknown(Exception):
    """Sent, but the outcome is unknown."""


def b64(s):
    return base64.b64encode(s.encode()).decode()


def unb64(s):
    return base64.b64decode(s).decode()


def post(path, body):
    req = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            v = json.load(r)
    except urllib.error.HTTPError as e:
        raise Unknown("HTTP %d: %s" % (e.code, e.read()[:200].decode(errors="replace")))
    except urllib.error.URLError as e:
        if isinstance(e.reason, ConnectionRefusedError):
            raise NotSent("connection refused")
        raise Unknown(str(e.reason))
    except (OSError, ValueError) as e:  # timeouts, resets, bad JSON
        raise Unknown(str(e) or type(e).__name__)
    if "error" in v:
        raise Unknown(v.get("message") or str(v["error"]))
    return v


def key(space, k):
    return PREFIX + space + "/" + (k if isinstance(k, str) else json.dumps(k))


def range_req(k):
    r = {"key": b64(k)}
    if SERIALIZABLE:
        r["serializable"] = True
    return r


def reg_read(op):
    v = post("/v3/kv/range", range_req(key("reg", op.get("key"))))
    kvs = v.get("kvs") or []  # proto3 leaves out empty fields
    return json.loads(unb64(kvs[0]["value"])) if kvs else None


def reg_write(op):
    k = b64(key("reg", op.get("key")))
    post("/v3/kv/put", {"key": k, "value": b64(json.dumps(op["value"]))})
    return op["value"]


def reg_cas(op):
    old, new = op["value"]
    k = b64(key("reg", op.get("key")))
    v = post("/v3/kv/txn", {
        "compare": [{"target": "VALUE", "result": "EQUAL", "key": k,
                     "value": b64(json.dumps(old))}],
        "success": [{"requestPut": {"key": k, "value": b64(json.dumps(new))}}],
    })
    if not v.get("succeeded"):  # a failed compare has no `succeeded` at all
        raise Fail("compare failed")
    return op["value"]


def set_add(op):
    post("/v3/kv/put", {"key": b64(key("set", op["value"])), "value": b64("1")})
    return op["value"]


def set_read(op):
    start, end = PREFIX + "set/", PREFIX + "set0"  # '0' is '/' + 1
    r = range_req(start)
    r.update({"range_end": b64(end), "keys_only": True})
    v = post("/v3/kv/range", r)
    return sorted(int(unb64(kv["key"])[len(start):]) for kv in v.get("kvs") or [])


OPS = {
    ("register", "read"): reg_read,
    ("register", "write"): reg_write,
    ("register", "cas"): reg_cas,
    ("set", "add"): set_add,
    ("set", "read"): set_read,
}


def main():
    for line in sys.stdin:
        op = json.loads(line)
        f = op["f"]
        handler = OPS.get((WORKLOAD, f))
        try:
            if handler is None:
                raise Fail("this client does not implement %s %s" % (WORKLOAD, f))
            out = {"type": "ok", "f": f, "value": handler(op)}
        except Fail as e:
            out = {"type": "fail", "f": f, "error": str(e)}
        except NotSent as e:
            # A killed member refuses at once: do not spin on it.
            time.sleep(random.uniform(0.05, 0.1))
            out = {"type": "fail", "f": f, "error": str(e)}
        except Unknown as e:
            out = {"type": "fail" if f == "read" else "info", "f": f, "error": str(e)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
