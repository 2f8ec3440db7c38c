"""The Lua the stream client runs: every fact of any number of streams and consumer groups in one
script call, and the arguments it takes.

A script runs atomically, so a stream's length, its group's counters, the ids of the entries
that are timed and the clock the ages are measured against are of one instant. The Lua only
gathers what Redis says; :mod:`.stream_reply` decides what it means (KEDA's answers for a
missing stream or group, the lag correction, the ages), since an error is easier to explain in
Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from scaler.backends.redis.scripts import Script
from scaler.backends.redis.stream_trigger import LAG_READ, RedisStream

#: entries per ``XRANGE`` when the script counts undelivered entries itself
COUNT_CHUNK: Final = 1000
#: entries one count reads at most: Redis serves nothing else while a script runs, reading an
#: entry costs it about a microsecond, and a watcher may read every 25 ms, so a count that
#: blocks Redis for more than about 10 ms is refused rather than repeated
COUNT_LIMIT: Final = 10_000
#: the count of a reply when the script did not count, and when it gave up at the limit
NOT_COUNTED: Final = -1
TOO_MANY: Final = -2

#: values per resource in :data:`STREAMS`'s reply, after ``TIME``'s two: the key's type, XLEN,
#: 1 when the group exists, then (nil without the group) its pending count, last-delivered id,
#: entries-read and lag (both nil when Redis cannot say or predates 7.0), the smallest pending
#: id, the first undelivered id, the entries counted after the last-delivered id
#: (:data:`NOT_COUNTED`, :data:`TOO_MANY`) and the stream's entries-added (nil unless counted
#: with entries-read known)
STREAM_GROUP: Final = 11

# KEYS: the streams, one per resource (a stream may repeat). ARGV: COUNT_CHUNK, COUNT_LIMIT,
# then two per resource: its consumer group ('' for none) and '1' when Redis's lag is to be
# corrected by counting. Only the declared stream is touched, so a Cluster master reads every
# stream it owns in one call.
STREAMS: Final = Script("""
local now = redis.call('TIME')
local out = {now[1], now[2]}
local o = 2
local chunk, limit = tonumber(ARGV[1]), tonumber(ARGV[2])

-- a reply of field/value pairs (XINFO) as a table
local function fields(reply)
  local t = {}
  for j = 1, #reply, 2 do t[reply[j]] = reply[j + 1] end
  return t
end

-- the entries after `last`, counted from whichever side ends first: forward from it, or up to
-- it (subtracted from XLEN), so that a count costs twice the smaller side at most
local function count_after(key, last, xlen)
  local after, upto, n_after, n_upto = '(' .. last, '-', 0, 0
  while n_after + n_upto < limit do
    local ahead = redis.call('XRANGE', key, after, '+', 'COUNT', chunk)
    n_after = n_after + #ahead
    if #ahead < chunk then return n_after end
    after = '(' .. ahead[#ahead][1]
    local behind = redis.call('XRANGE', key, upto, last, 'COUNT', chunk)
    n_upto = n_upto + #behind
    if #behind < chunk then return math.max(0, xlen - n_upto) end
    upto = '(' .. behind[#behind][1]
  end
  return -2 -- TOO_MANY
end

for i, key in ipairs(KEYS) do
  local group, correct = ARGV[2 * i + 1], ARGV[2 * i + 2] == '1'
  -- XLEN and XINFO fail on another type: its name goes back instead, for the error
  local t = redis.call('TYPE', key)['ok']
  local xlen, found, pending, last, read, lag = 0, 0, false, false, false, false
  local oldest_pending, undelivered, counted, added = false, false, -1, false
  if t == 'stream' then
    xlen = redis.call('XLEN', key)
  end
  if t == 'stream' and group ~= '' then
    for _, entry in ipairs(redis.call('XINFO', 'GROUPS', key)) do
      local info = fields(entry)
      if info['name'] == group then
        found = 1
        last = info['last-delivered-id']
        -- nil (false here) when Redis cannot say; absent before Redis 7.0
        read = info['entries-read'] or false
        lag = info['lag'] or false
      end
    end
  end
  if found == 1 then
    local summary = redis.call('XPENDING', key, group)
    pending, oldest_pending = summary[1], summary[2]
    local after = redis.call('XRANGE', key, '(' .. last, '+', 'COUNT', 1)
    if after[1] then undelivered = after[1][1] end
    if correct and (not lag or lag > xlen) then
      -- Redis's lag is unknown (XGROUP SETID, XDEL ahead of the group) or counts deleted
      -- entries (XTRIM): count the entries after the last-delivered id
      counted = 0
      if undelivered then counted = count_after(key, last, xlen) end
      -- with entries-read, entries-added tells how many undelivered entries were deleted
      if read then
        added = fields(redis.call('XINFO', 'STREAM', key))['entries-added'] or false
      end
    end
  end
  out[o + 1], out[o + 2], out[o + 3], out[o + 4] = t, xlen, found, pending
  out[o + 5], out[o + 6], out[o + 7], out[o + 8] = last, read, lag, oldest_pending
  out[o + 9], out[o + 10], out[o + 11] = undelivered, counted, added
  o = o + 11
end
return out
""")


def stream_arguments(resources: Sequence[RedisStream]) -> tuple[list[str], list[str]]:
    """KEYS and ARGV of :data:`STREAMS` for these resources, in order."""
    keys = [resource.stream for resource in resources]
    argv = [str(COUNT_CHUNK), str(COUNT_LIMIT)]
    for resource in resources:
        argv += [resource.group or "", "1" if resource.read == LAG_READ else "0"]
    return keys, argv
