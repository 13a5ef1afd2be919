-- POST /oauth2/introspect, every request a token never introspected before (cold: no cached
-- signature check). Each thread takes every n-th line of BENCH_COLD_FILE (n = BENCH_THREADS)
-- and never repeats one; a thread that runs out stops and counts itself in threads_exhausted
-- (its requests/s would then be understated, and bench.sh says so).
-- Env: BENCH_WRK_DIR, BENCH_AUTHORIZATION, BENCH_COLD_FILE, BENCH_THREADS.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

setup = common.setup
done = common.done

local bodies = {}
local index = 0

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = common.env("BENCH_AUTHORIZATION")
  bodies = common.thread_share(common.env("BENCH_COLD_FILE"), "token=")
end

function request()
  index = index + 1
  if index > #bodies then
    if exhausted == 0 then
      exhausted = 1
      wrk.thread:stop()
    end
    -- Something must be returned; the loop is stopping, and these are never counted as cold.
    return wrk.format(nil, nil, nil, bodies[#bodies])
  end
  return wrk.format(nil, nil, nil, bodies[index])
end

function response(status, headers, body)
  common.check(status, body, '"active":true')
end
