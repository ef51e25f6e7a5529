# An auditor's re-implementation of the hash chain check (README, "Verifying the log"), in
# Python 3 with no dependency, to show the canonical form is language-neutral. It checks
# versions and hashes only; `deno task verify` also checks order and seals.
#
#   psql -At -c "select json_build_array(stream_id, stream_version, event_id, type, data,
#     metadata, encode(hash, 'hex')) from events order by stream_id, stream_version" \
#     | python3 audit/verify_chains.py
import hashlib, json, sys
from decimal import Decimal

def es_number(x):  # ECMAScript Number::toString (RFC 8785 §3.2.2.3)
    if x == 0:
        return "0"
    digits_t = Decimal(repr(abs(x))).normalize().as_tuple()
    digits = "".join(map(str, digits_t.digits))
    k, n = len(digits), digits_t.exponent + len(digits)
    if k <= n <= 21:
        s = digits + "0" * (n - k)
    elif 0 < n <= 21:
        s = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        s = "0." + "0" * -n + digits
    else:
        e = n - 1
        s = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if e > 0 else "-") + str(abs(e))
    return ("-" if x < 0 else "") + s

def jcs(v):  # RFC 8785 canonical JSON
    if v is None or isinstance(v, bool):
        return json.dumps(v)
    if isinstance(v, (int, float)):
        return es_number(float(v))
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(jcs(item) for item in v) + "]"
    keys = sorted(v, key=lambda key: key.encode("utf-16-be"))
    return "{" + ",".join(jcs(key) + ":" + jcs(v[key]) for key in keys) + "}"

stream, previous, expected = None, None, None
for line in sys.stdin:
    stream_id, version, event_id, type_, data, metadata, stored = json.loads(line)
    if stream_id != stream:
        stream, previous, expected = stream_id, bytes(32), 1
    if version != expected:
        sys.exit(f"{stream_id} version {expected}: removed")
    content = jcs([stream_id, version, event_id, type_, data, metadata]).encode("utf-8")
    computed = hashlib.sha256(previous + content).hexdigest()
    if computed != stored:
        sys.exit(f"{stream_id} version {version}: altered")
    previous, expected = bytes.fromhex(stored), version + 1
print("all chains check out")
