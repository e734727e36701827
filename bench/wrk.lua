-- wrk script for Settle's benchmarks; bench/run.py drives it through environment variables:
--   BENCH_AUTH       the whole Authorization header value ("Basic base64(user:secret)")
--   BENCH_BODY_FILE  when set, every request is a POST of this file as application/json
--   BENCH_UNIQUE_PREFIX  when set, "{handle}" in the body becomes "<prefix>-<thread>-<n>" in
--                    each request (creates whose handle must be unique: Lua per request)
--   BENCH_QUOTA      when > 0, each wrk thread stops sending after this many 2xx responses
--                    (the bulk-fill mode of the memory benchmark; run.py then ends wrk
--                    with SIGINT once the database holds the target count)
-- The request is static (no request() function), so wrk builds it once: no Lua per request
-- unless BENCH_QUOTA is set. done() prints one machine-readable line for run.py to parse:
--   BENCH_RESULT {"requests": ..., "duration_us": ..., "p50_us": ..., ...}

local auth = os.getenv("BENCH_AUTH")
if auth == nil or auth == "" then
  error("BENCH_AUTH is not set")
end
wrk.headers["Authorization"] = auth

local body_file = os.getenv("BENCH_BODY_FILE")
if body_file ~= nil and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end

-- BENCH_UNIQUE_PREFIX: a fresh handle in every request's body (the Reepay invoice create
-- answers code 11 to a handle used before).
local unique = os.getenv("BENCH_UNIQUE_PREFIX")
if unique ~= nil and unique ~= "" then
  assert(wrk.body ~= nil and wrk.body:find("{handle}", 1, true), "no {handle} in the body")
  local threads = 0
  function setup(thread)
    threads = threads + 1
    thread:set("thread_number", threads)
  end
  local template = wrk.body
  local sent = 0
  function request()
    sent = sent + 1
    local handle = unique .. "-" .. (thread_number or 0) .. "-" .. sent
    local body = template:gsub("{handle}", handle, 1)
    return wrk.format(nil, nil, nil, body)
  end
end

-- BENCH_IDS_FILE: one invoice id per line; each request then pages from a random one of them
-- (URL + "&start_after=<id>"), so pages are spread over the whole table (render caches cold).
local ids_file = os.getenv("BENCH_IDS_FILE")
if ids_file ~= nil and ids_file ~= "" then
  local threads = 0
  function setup(thread)
    threads = threads + 1
    thread:set("thread_number", threads)
  end
  local ids = {}
  for line in io.lines(ids_file) do
    ids[#ids + 1] = line
  end
  assert(#ids > 0, "BENCH_IDS_FILE is empty")
  function init(args)
    math.randomseed(os.time() * 1000 + (thread_number or 0))
  end
  function request()
    return wrk.format(nil, wrk.path .. "&start_after=" .. ids[math.random(#ids)])
  end
end

-- BENCH_PATHS_FILE: one path a line ("/invoices/iv_.../authorize"); each thread walks its own
-- share of the lines in order (thread k of n takes lines k, k+n, ...), so every request acts
-- on an object no other request touches (each invoice is authorized once).
local paths_file = os.getenv("BENCH_PATHS_FILE")
if paths_file ~= nil and paths_file ~= "" then
  local threads = 0
  function setup(thread)
    threads = threads + 1
    thread:set("thread_number", threads)
    thread:set("thread_count", 0)
  end
  local paths = {}
  for line in io.lines(paths_file) do
    paths[#paths + 1] = line
  end
  assert(#paths > 0, "BENCH_PATHS_FILE is empty")
  local next_line = nil
  local step = nil
  local last = nil
  function init(args)
    step = tonumber(os.getenv("BENCH_THREADS") or "1")
    next_line = thread_number or 1
    -- A thread stops one round of its connections before its share ends: stop() ends wrk's
    -- event loop only after the current pass, in which its other connections may still ask
    -- for a request each. Without the margin they got the last path again, acting on an
    -- object twice (a capture of a captured invoice: the 1-5 non-2xx seen at the end of a
    -- payment step's figure).
    local per_thread = math.ceil(tonumber(os.getenv("BENCH_CONNECTIONS") or "1") / step)
    last = #paths - per_thread * step
  end
  function request()
    local path = paths[next_line] or paths[#paths]
    next_line = next_line + step
    return wrk.format(nil, path)
  end
  -- A thread whose share is used up stops (rather than act on an object again): the figure
  -- is then over fewer seconds, which wrk accounts for.
  function response(status, headers, body)
    if next_line > last then
      wrk.thread:stop()
    end
  end
end

local quota = tonumber(os.getenv("BENCH_QUOTA") or "0") or 0
if quota > 0 then
  local seen = 0
  function response(status, headers, body)
    if status < 300 then
      seen = seen + 1
    end
    if seen >= quota then
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, '
      .. '"p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, "errors": '
      .. '{"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout))
end
