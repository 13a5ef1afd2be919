-- POST /oauth2/token, grant_type=client_credentials, client_secret_basic.
-- Env: BENCH_WRK_DIR (this folder), BENCH_AUTHORIZATION ("Basic ..."), BENCH_SCOPE (optional),
-- BENCH_TOKENS_DIR (optional: each thread appends every access_token it receives to
-- tokens-<thread>.txt there, one per line, for the introspection runs).
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

setup = common.setup
done = common.done

local out = nil

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = common.env("BENCH_AUTHORIZATION")
  local scope = common.env("BENCH_SCOPE", "")
  wrk.body = "grant_type=client_credentials" .. (scope ~= "" and ("&scope=" .. scope:gsub(" ", "+")) or "")
  local dir = common.env("BENCH_TOKENS_DIR", "")
  if dir ~= "" then
    out = assert(io.open(string.format("%s/tokens-%d.txt", dir, wrk.thread:get("id")), "a"))
    -- One write(2) per token: wrk never closes a thread's Lua state, so nothing may stay buffered.
    out:setvbuf("line")
  end
end

function response(status, headers, body)
  common.check(status, body, '"access_token":"')
  if out ~= nil and status == 200 then
    local token = body:match('"access_token":"([^"]+)"')
    if token then out:write(token, "\n") end
  end
end
