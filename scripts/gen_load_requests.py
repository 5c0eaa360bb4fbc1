#!/usr/bin/env python3
"""Writes a wrk Lua script (OUT) and its data file (OUT.data) that POST N distinct,
correctly signed WhatsApp webhooks (unique message ids, so dedupe does not
short-circuit delivery).

    gen_load_requests.py FIXTURE APP_SECRET N OUT
"""
import hashlib, hmac, json, sys

fixture, secret, n, out = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4]
base = json.load(open(fixture))
with open(out + ".data", "w") as data:
    for i in range(n):
        doc = json.loads(json.dumps(base))
        for e in doc["entry"]:
            for c in e["changes"]:
                for m in c["value"].get("messages", []):
                    m["id"] = f"wamid.load{i:09d}"
                    m["from"] = f"1650555{i % 1000:04d}"
        body = json.dumps(doc, separators=(",", ":"))
        sig = "sha256=" + hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        data.write(sig + "\t" + body + "\n")

LUA = r'''
local reqs = {}
for line in io.lines("__DATA__") do
  local sig, body = line:match("^([^\t]*)\t(.*)$")
  reqs[#reqs + 1] = {body, sig}
end
local i = 0
-- Each wrk thread starts at its own offset, so two threads never send the same event.
local threads = 0
setup = function(thread)
  thread:set("id", threads)
  threads = threads + 1
end
init = function(args)
  i = (id or 0) * 20011
end
request = function()
  i = i + 1
  local r = reqs[((i - 1) % #reqs) + 1]
  return wrk.format("POST", "/webhooks/meta",
    {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = r[2]}, r[1])
end
done = function(summary, latency, requests)
  io.write(string.format("requests/s: %.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("p50: %.2f ms  p99: %.2f ms  max: %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("non-2xx: %d  socket errors: %d\n", summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
'''
open(out, "w").write(LUA.replace("__DATA__", out + ".data"))
