-- POST /oauth2/introspect over a small fixed set of tokens, again and again (warm: the broker has
-- seen each token before). Env: BENCH_WRK_DIR, BENCH_AUTHORIZATION, BENCH_WARM_FILE (one token per
-- line). Every answer must be 200 with "active":true.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

setup = common.setup
done = common.done

local bodies = {}
local index = 0

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = common.env("BENCH_AUTHORIZATION")
  for _, token in ipairs(common.read_lines(common.env("BENCH_WARM_FILE"))) do
    bodies[#bodies + 1] = "token=" .. token
  end
  assert(#bodies > 0, "no warm tokens")
  index = wrk.thread:get("id") * 7
end

function request()
  index = index + 1
  return wrk.format(nil, nil, nil, bodies[(index % #bodies) + 1])
end

function response(status, headers, body)
  common.check(status, body, '"active":true')
end
