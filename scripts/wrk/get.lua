-- GET of a fixed path (the /healthz ceiling). Env: BENCH_WRK_DIR.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

setup = common.setup
done = common.done

function response(status, headers, body)
  common.check(status, body, nil)
end
