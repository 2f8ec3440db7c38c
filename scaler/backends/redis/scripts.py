"""The Lua the Redis client runs, and the arguments each script takes.

Every read is one script call (``EVALSHA``, ``EVAL`` the first time): a script runs atomically,
so the length, the oldest element, its hash and the clock it reports are of one instant.

* :data:`LENGTHS`: KEDA's read, ``TYPE`` then the length command of that type, for one key or
  for every key of a watcher batch; a plain-length trigger uses only this.
* :data:`READ`: the same for any number of resources, plus, where a resource asks for them, the
  oldest element (``LINDEX``), the hash it names (``TYPE``, ``HGET``) and the processing list's
  length; and Redis ``TIME`` once, the clock every age is measured against. The reply is
  ``TIME``'s two values, then :data:`READ_GROUP` values per resource (see :func:`read_arguments`).

Parsing the timestamps is Python's (``age``), not Lua's: Redis's Lua has no date parser, and an
error is easier to explain in Python.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from scaler.backends.redis.params import PLACEHOLDER
from scaler.backends.redis.trigger import RedisList


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and the SHA1 Redis knows it by."""

    text: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.text.encode(), usedforsecurity=False).hexdigest()
        object.__setattr__(self, "sha", digest)


# KEDA's script: TYPE then the matching length command, atomically and in one round trip (with
# the type too, so that an unsupported type can be named in the error), for every key it is
# given: a watcher batch costs Redis one call however many lists are watched on the connection.
LENGTHS: Final = Script("""
local out = {}
for i, key in ipairs(KEYS) do
  local t = redis.call('TYPE', key)['ok']
  local n = -1
  if t == 'list' or t == 'none' then n = redis.call('LLEN', key)
  elseif t == 'set' then n = redis.call('SCARD', key)
  elseif t == 'zset' then n = redis.call('ZCARD', key)
  elseif t == 'hash' then n = redis.call('HLEN', key) end
  out[2 * i - 1] = t
  out[2 * i] = n
end
return out
""")

#: values per resource in :data:`READ`'s reply: the key's type and length, the oldest element
#: (nil when not asked for or the list is empty), the type of the hash it names ('' when none)
#: and the hash's field (nil when missing), the processing list's type ('' when none) and length
READ_GROUP: Final = 7
#: values per resource in :data:`READ`'s ARGV (see :func:`read_arguments`)
_READ_ARGS: Final = 6
# A hash key is built from the element, so it cannot be declared in KEYS: standalone Redis
# allows that; a Cluster node only when the hash is on that node (a hash tag shared with the
# list), so the client reads such a list alone.
READ: Final = Script("""
local now = redis.call('TIME')
local out = {now[1], now[2]}
local o = 2
local count = {list = 'LLEN', none = 'LLEN', set = 'SCARD', zset = 'ZCARD', hash = 'HLEN'}
local k = 0
for i = 1, #ARGV, 6 do
  k = k + 1
  local key = KEYS[k]
  local t = redis.call('TYPE', key)['ok']
  local n = -1
  if count[t] then n = redis.call(count[t], key) end
  local element, hash_type, field = false, '', false
  if ARGV[i] ~= '' and t == 'list' then
    element = redis.call('LINDEX', key, ARGV[i])
    if element and ARGV[i + 1] == '1' then
      local hash = ARGV[i + 2] .. element .. ARGV[i + 3]
      hash_type = redis.call('TYPE', hash)['ok']
      if hash_type == 'hash' then field = redis.call('HGET', hash, ARGV[i + 4]) end
    end
  end
  local processing_type, processing = '', -1
  if ARGV[i + 5] == '1' then
    k = k + 1
    processing_type = redis.call('TYPE', KEYS[k])['ok']
    if processing_type == 'list' or processing_type == 'none' then
      processing = redis.call('LLEN', KEYS[k])
    end
  end
  out[o + 1], out[o + 2], out[o + 3], out[o + 4] = t, n, element, hash_type
  out[o + 5], out[o + 6], out[o + 7] = field, processing_type, processing
  o = o + 7
end
return out
""")


def plain(resource: RedisList) -> bool:
    """Whether the resource is a length alone, which KEDA's scripts read."""
    return resource.age is None and resource.processing is None


def read_arguments(resources: Sequence[RedisList]) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of :data:`READ` for these resources, in order.

    KEYS: each resource's key, followed by its processing list when it has one. ARGV, six per
    resource: the ``LINDEX`` index of the oldest element (``-1`` right, ``0`` left, empty for no
    age); ``1`` when the element names a hash; the hash key before and after the element; the
    hash field; ``1`` when a processing list follows the key in KEYS.
    """
    keys: list[str] = []
    argv: list[str] = []
    for resource in resources:
        keys.append(resource.key)
        age = resource.age
        index, hashed, before, after, hash_field = "", "0", "", "", ""
        if age is not None:
            index = "-1" if age.end == "right" else "0"
            if age.hash_key is not None:
                hashed, hash_field = "1", age.field
                before, _, after = age.hash_key.partition(PLACEHOLDER)
        processing = "0"
        if resource.processing is not None:
            keys.append(resource.processing)
            processing = "1"
        argv += [index, hashed, before, after, hash_field, processing]
    assert len(argv) == _READ_ARGS * len(resources)
    return keys, argv
