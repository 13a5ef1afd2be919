-- POST /oauth2/token, RFC 8693 token exchange with a DPoP proof (RFC 9449), client_secret_basic.
-- Every request carries a proof never used before: each thread takes every n-th line of
-- BENCH_PROOFS_FILE (n = BENCH_THREADS) and stops when it runs out (counted in threads_exhausted).
-- The subject token is the same for every request (a connector exchanging the token it holds).
-- Env: BENCH_WRK_DIR, BENCH_EXCHANGE_AUTHORIZATION, BENCH_SUBJECT_FILE, BENCH_PROOFS_FILE,
-- BENCH_THREADS, BENCH_SCOPE.
local common = dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

setup = common.setup
done = common.done

local proofs = {}
local index = 0
local body = nil
local headers = {}

function init(args)
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  headers["Authorization"] = common.env("BENCH_EXCHANGE_AUTHORIZATION")
  local subject = common.read_lines(common.env("BENCH_SUBJECT_FILE"))[1]
  body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange"
    .. "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token"
    .. "&subject_token=" .. subject .. "&scope=" .. common.env("BENCH_SCOPE"):gsub(":", "%%3A")
  proofs = common.thread_share(common.env("BENCH_PROOFS_FILE"))
end

function request()
  index = index + 1
  if index > #proofs then
    if exhausted == 0 then
      exhausted = 1
      wrk.thread:stop()
    end
    index = #proofs
  end
  headers["DPoP"] = proofs[index]
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  common.check(status, body, '"token_type":"DPoP"')
end
